package app_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkReloadToServing measures the time from a configuration change
// to the first request served by the new generation, for a
// configuration-only plugin change and a code change: through the file
// watcher (writing the file; includes the watcher's debounce, set to
// 200 ms, the default) and through Reload directly (no debounce).
//
//	go test -run '^$' -bench BenchmarkReloadToServing -benchtime 20x ./internal/app/
func BenchmarkReloadToServing(b *testing.B) {
	for _, trigger := range []string{"watch", "reload"} {
		for _, change := range []string{"config", "code"} {
			b.Run(trigger+"/"+change, func(b *testing.B) {
				r := newRig(b, one(pluginSpec{name: "a", mod: probe, value: "p-0"}))
				if trigger == "watch" {
					w, err := r.app.Watch(200 * time.Millisecond)
					if err != nil {
						b.Fatal(err)
					}
					defer w.Close()
				}
				cur := pluginSpec{name: "a", mod: probe, value: "p-0"}
				var took []time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					next := cur
					switch {
					case change == "config":
						next.value = fmt.Sprintf("%s-%d", cur.value[:1], i+1)
					case cur.mod == probe:
						next = pluginSpec{name: "a", mod: hello, value: fmt.Sprintf("h-%d", i+1)}
					default:
						next = pluginSpec{name: "a", mod: probe, value: fmt.Sprintf("p-%d", i+1)}
					}
					start := time.Now()
					if trigger == "watch" {
						r.set(one(next))
					} else if _, err := r.reload(one(next)); err != nil {
						b.Fatal(err)
					}
					for {
						s, err := r.get("/")
						if err == nil && s.respCfg == next.value {
							break
						}
						if time.Since(start) > waitLimit {
							b.Fatalf("generation with %s not serving after %s", next.value, waitLimit)
						}
					}
					took = append(took, time.Since(start))
					cur = next
				}
				b.StopTimer()
				slices.Sort(took)
				var sum time.Duration
				for _, d := range took {
					sum += d
				}
				b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(took)), "mean-ms-to-serving")
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms-to-serving")
				b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms-to-serving")
			})
		}
	}
}

// BenchmarkReloadStormLatency compares request latency under steady load
// with the latency under the same load while the configuration reloads
// back to back (alternating configuration and code changes): it reports
// p50 and p99 of both and the p99 ratio (storm ÷ steady), over b.N
// rounds of steady then storm.
//
//	go test -run '^$' -bench BenchmarkReloadStormLatency -benchtime 3x ./internal/app/
func BenchmarkReloadStormLatency(b *testing.B) {
	const clients, phase = 4, 5 * time.Second
	r := newRig(b, one(pluginSpec{name: "a", mod: probe, value: "p-0"}))
	for i := 0; i < 50; i++ {
		_, _ = r.get("/")
	}
	load := func(d time.Duration, during func(stop <-chan struct{})) []time.Duration {
		stop := make(chan struct{})
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Go(func() {
				var mine []time.Duration
				for {
					select {
					case <-stop:
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
						return
					default:
					}
					start := time.Now()
					s, err := r.get("/")
					if err != nil || s.status != 200 {
						b.Errorf("request failed: %+v %v", s, err)
					}
					mine = append(mine, time.Since(start))
				}
			})
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if during != nil {
				during(stop)
			}
		}()
		time.Sleep(d)
		close(stop)
		wg.Wait()
		<-done
		return lat
	}
	reloads := 0
	var steady, storm []time.Duration
	for i := 0; i < b.N; i++ {
		steady = append(steady, load(phase, nil)...)
		storm = append(storm, load(phase, func(stop <-chan struct{}) {
			cur := pluginSpec{name: "a", mod: probe, value: "p-0"}
			for {
				select {
				case <-stop:
					return
				default:
				}
				reloads++
				next := cur
				if reloads%2 == 0 {
					next.value = fmt.Sprintf("%s-%d", cur.value[:1], reloads)
				} else if cur.mod == probe {
					next = pluginSpec{name: "a", mod: hello, value: fmt.Sprintf("h-%d", reloads)}
				} else {
					next = pluginSpec{name: "a", mod: probe, value: fmt.Sprintf("p-%d", reloads)}
				}
				if _, err := r.reload(one(next)); err != nil {
					b.Error(err)
					return
				}
				cur = next
			}
		})...)
	}
	{
		p := func(l []time.Duration, q float64) float64 {
			slices.Sort(l)
			return float64(l[int(float64(len(l)-1)*q)].Microseconds()) / 1000
		}
		b.ReportMetric(p(steady, .5), "steady-p50-ms")
		b.ReportMetric(p(steady, .99), "steady-p99-ms")
		b.ReportMetric(p(storm, .5), "storm-p50-ms")
		b.ReportMetric(p(storm, .99), "storm-p99-ms")
		b.ReportMetric(p(storm, .99)/p(steady, .99), "p99-ratio")
		b.ReportMetric(float64(reloads)/phase.Seconds()/float64(b.N), "reloads/s")
		b.ReportMetric(float64(len(steady)), "steady-requests")
		b.ReportMetric(float64(len(storm)), "storm-requests")
	}
}
