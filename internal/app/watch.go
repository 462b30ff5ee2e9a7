package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the configuration files must stay quiet
// after a change before Watch reloads them.
const DefaultDebounce = 200 * time.Millisecond

// Watcher reloads the configuration when its files change. Close stops it.
// Safe for concurrent use.
type Watcher struct {
	a        *App
	fs       *fsnotify.Watcher
	debounce time.Duration
	// files are the watched file paths (cleaned, absolute); dirs the
	// watched configuration directories. Both map to the directory
	// fsnotify watches.
	files map[string]bool
	dirs  map[string]bool

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Watch starts watching Options.ConfigPaths and reloads (like Reload) once
// they have been quiet for debounce (DefaultDebounce when 0) after a
// change. It watches directories, not files: the directory of each
// configuration file, and each configuration directory. So a file that an
// editor replaces by renaming a new one over it, or that Kubernetes swaps
// through a symlinked ..data directory, is still seen; a file caught half
// written fails to load and is rejected (the running configuration keeps
// serving) and the write that completes it triggers the next reload.
func (a *App) Watch(debounce time.Duration) (*Watcher, error) {
	if len(a.opts.ConfigPaths) == 0 {
		return nil, errors.New("watch: no configuration paths")
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{a: a, fs: fw, debounce: debounce, files: map[string]bool{}, dirs: map[string]bool{}, done: make(chan struct{})}
	for _, p := range a.opts.ConfigPaths {
		abs, err := filepath.Abs(p)
		if err != nil {
			_ = fw.Close()
			return nil, err
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			w.dirs[abs] = true
		} else {
			w.files[abs] = true
		}
	}
	if err := w.addAll(); err != nil {
		_ = fw.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.loop(ctx)
	a.logger.Info("watching the configuration for changes", "paths", a.opts.ConfigPaths, "debounce", debounce.String())
	return w, nil
}

// addAll (re)adds the watched directories; adding one twice is harmless.
func (w *Watcher) addAll() error {
	var errs []error
	for d := range w.watchDirs() {
		if err := w.fs.Add(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Watcher) watchDirs() map[string]bool {
	out := map[string]bool{}
	for f := range w.files {
		out[filepath.Dir(f)] = true
	}
	for d := range w.dirs {
		out[d] = true
	}
	return out
}

// relevant reports whether an event can change the configuration: an
// event on a configuration file, on a file a configuration directory
// contributes (*.yaml, *.yml, not hidden: what config.Load reads), or on
// a Kubernetes-style "..data" entry next to either. Other files in those
// directories (an access log, editor swap files) are ignored.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	if w.files[name] || w.dirs[name] {
		return true
	}
	dir, base := filepath.Dir(name), filepath.Base(name)
	if strings.HasPrefix(base, "..") {
		return w.watchDirs()[dir]
	}
	ext := filepath.Ext(base)
	return w.dirs[dir] && !strings.HasPrefix(base, ".") && (ext == ".yaml" || ext == ".yml")
}

func (w *Watcher) loop(ctx context.Context) {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	maxWait := 10 * w.debounce
	var pending time.Time // first change not yet reloaded
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			// Each change restarts the quiet period, but a directory that
			// never goes quiet still reloads every maxWait.
			now := time.Now()
			if pending.IsZero() {
				pending = now
			}
			if now.Sub(pending) < maxWait {
				timer.Reset(w.debounce)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.a.logger.Warn("configuration watch error", "error", err)
		case <-timer.C:
			pending = time.Time{}
			// A watched directory that was replaced needs watching again.
			if err := w.addAll(); err != nil {
				w.a.logger.Warn("configuration watch: cannot watch a configuration directory", "error", err)
			}
			w.a.logger.Info("configuration files changed; reloading")
			_, _ = w.a.Reload(context.WithoutCancel(ctx))
		}
	}
}

// Close stops watching and waits for a reload in progress to finish.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		w.cancel()
		err = w.fs.Close()
		<-w.done
	})
	return err
}
