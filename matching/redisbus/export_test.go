package redisbus

// SetBeforeWrite installs a hook that runs before each of r's writes.
func SetBeforeWrite(r *Runner, f func()) { r.beforeWrite = f }

// SetAfterWrite installs a hook that runs after each of r's writes, in
// the runner's goroutine: the engine is at the written sequence.
func SetAfterWrite(r *Runner, f func()) { r.afterWrite = f }
