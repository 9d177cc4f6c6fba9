// Command hello is the smallest herd program: a Go HTTP server that runs as
// a cluster of workers supervised by its own primary.
//
//	go run ./examples/hello            # serves on 127.0.0.1:8080
//	curl http://127.0.0.1:8080/
//	kill -USR2 <primary pid>            # rolling restart, no request fails
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/herd-cluster/herd"
)

func main() {
	addr := "127.0.0.1:8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	err := herd.Run(context.Background(), herd.Config{
		Workers: max(herd.CPUs(), 2),
		Listen:  []string{addr},
	}, func(ctx context.Context, w *herd.Worker) error {
		return w.ServeHTTP(ctx, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(rw, "hello from worker %d (pid %d)\n", w.ID(), os.Getpid())
		}))
	})
	if err != nil {
		log.Fatal(err)
	}
}
