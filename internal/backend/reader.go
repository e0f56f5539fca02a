package backend

import (
	"context"
	"io"
)

// ContextReader returns a reader of rd that fails with ctx's error once
// ctx is done, so that a cancelled Save stops streaming even where the
// transport takes no context (SFTP, a local file).
func ContextReader(ctx context.Context, rd io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, rd: rd}
}

type ctxReader struct {
	ctx context.Context
	rd  io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.rd.Read(p)
}
