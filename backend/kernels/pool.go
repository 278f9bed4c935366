package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The worker pool: persistent goroutines that block on an unbuffered channel. A parallel call hands its job
// to as many idle workers as it may use with non-blocking sends (a busy pool simply means fewer helpers), takes
// part in the work itself, then waits only for the helpers that took the job. Nothing ever waits on a job that
// nobody is running, so nested and concurrent calls cannot deadlock.

type job struct {
	next  atomic.Int64
	n     int
	chunk int
	f     func(lo, hi int)
	wg    sync.WaitGroup
}

func (j *job) work() {
	c := int64(j.chunk)
	for {
		lo := j.next.Add(c) - c
		if lo >= int64(j.n) {
			return
		}
		hi := lo + c
		if hi > int64(j.n) {
			hi = int64(j.n)
		}
		j.f(int(lo), int(hi))
	}
}

var (
	workCh   = make(chan *job)
	poolMu   sync.Mutex
	nWorkers int
	nThreads atomic.Int32
)

func worker() {
	for j := range workCh {
		j.work()
		j.wg.Done()
	}
}

func ensureWorkers(k int) {
	if singleThreaded {
		return
	}
	poolMu.Lock()
	for nWorkers < k {
		nWorkers++
		go worker()
	}
	poolMu.Unlock()
}

func init() {
	if singleThreaded {
		nThreads.Store(1)
		return
	}
	t := runtime.GOMAXPROCS(0)
	nThreads.Store(int32(t))
	ensureWorkers(t - 1)
}

// Threads returns the number of goroutines the kernels may use (see SetThreads).
func Threads() int { return int(nThreads.Load()) }

func setThreads(n int) int {
	old := Threads()
	if singleThreaded {
		return old
	}
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	nThreads.Store(int32(n))
	ensureWorkers(n - 1)
	return old
}

// parallelRun calls f on [lo, hi) chunks of size chunk covering [0, n), on this goroutine and idle workers.
func parallelRun(n, chunk int, f func(lo, hi int)) {
	if chunk < 1 {
		chunk = 1
	}
	helpers := (n+chunk-1)/chunk - 1
	if t := Threads() - 1; helpers > t {
		helpers = t
	}
	if helpers <= 0 {
		f(0, n)
		return
	}
	j := &job{n: n, chunk: chunk, f: f}
	for h := 0; h < helpers; h++ {
		j.wg.Add(1)
		sent := false
		select {
		case workCh <- j:
			sent = true
		default:
		}
		if !sent {
			j.wg.Done()
			break
		}
	}
	j.work()
	j.wg.Wait()
}
