package provision

import "sync"

// userQueues runs jobs one at a time per key (a connector's user), in the
// order they were submitted, and jobs of different keys side by side, at
// most workers at once.
type userQueues struct {
	workers chan struct{}

	mu      sync.Mutex
	pending map[string][]func() // present while its key has a job queued or running
	wg      sync.WaitGroup
}

func newUserQueues(workers int) *userQueues {
	return &userQueues{workers: make(chan struct{}, max(1, workers)), pending: map[string][]func(){}}
}

// submit queues job behind the other jobs of key.
func (q *userQueues) submit(key string, job func()) {
	q.mu.Lock()
	jobs, active := q.pending[key]
	q.pending[key] = append(jobs, job)
	q.mu.Unlock()
	if !active {
		q.wg.Add(1)
		go q.drain(key)
	}
}

// drain runs the jobs of key until none is left.
func (q *userQueues) drain(key string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		jobs := q.pending[key]
		if len(jobs) == 0 {
			delete(q.pending, key)
			q.mu.Unlock()
			return
		}
		job := jobs[0]
		jobs[0] = nil
		q.pending[key] = jobs[1:]
		q.mu.Unlock()
		q.workers <- struct{}{}
		job()
		<-q.workers
	}
}

// wait waits for every job submitted to end.
func (q *userQueues) wait() { q.wg.Wait() }
