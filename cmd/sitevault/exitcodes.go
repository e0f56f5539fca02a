package main

// exitCode maps an error to the process exit code documented in the README.
// Only main turns errors into exit codes.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	return 1
}
