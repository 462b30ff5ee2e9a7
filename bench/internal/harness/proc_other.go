//go:build !linux

package harness

import (
	"os"
	"syscall"
	"time"
)

func childSysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, kill bool) {
	if kill {
		_ = p.Kill()
		return
	}
	_ = p.Signal(os.Interrupt)
}

func processCPU(int) (time.Duration, error) { return 0, errNotSupported }
func processPeakRSS(int) (int64, error)     { return 0, errNotSupported }
func selfCPU() (time.Duration, error)       { return 0, errNotSupported }

func machineBusy() (time.Duration, error) { return 0, errNotSupported }
func loadAverage() (float64, error)       { return 0, errNotSupported }
