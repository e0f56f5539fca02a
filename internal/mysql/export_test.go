package mysql

// Test hooks.

func setBeforeTable(o *BackupOptions, f func(table string, attempt int)) { o.beforeTable = f }
func setBeforeSwap(o *RestoreOptions, f func() error)                    { o.beforeSwap = f }
func setRangeRows(o *BackupOptions, n int64, f func(table string, ranges int)) {
	o.rangeRows, o.onRanges = n, f
}
