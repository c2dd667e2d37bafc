package redisbus

// SetBeforeWrite installs a hook that runs before each of r's writes.
func SetBeforeWrite(r *Runner, f func()) { r.beforeWrite = f }
