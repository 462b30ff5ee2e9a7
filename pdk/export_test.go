package pdk

// ResetHostScan forgets that the host failed to scan usage, so that one
// test's fallback does not decide the next test's path.
func ResetHostScan() { noHostScan.Store(false) }
