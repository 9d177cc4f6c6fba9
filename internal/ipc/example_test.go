package ipc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/herd-cluster/herd/internal/ipc"
)

// upper is a Handler with one delegated type, "upper".
type upper struct{}

func (upper) Delegate(ctx context.Context, slot int, typ string, payload json.RawMessage) (json.RawMessage, error) {
	if typ != "upper" {
		return nil, ipc.ErrNoHandler
	}
	var s string
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, err
	}
	return json.Marshal(strings.ToUpper(s))
}

func (upper) Notify(slot int, typ string, payload json.RawMessage)          {}
func (upper) Stats(ctx context.Context) (json.RawMessage, error)            { return nil, nil }
func (upper) Status(ctx context.Context, slot int) (json.RawMessage, error) { return nil, nil }
func (upper) ECV() (bool, bool, string)                                     { return true, true, "" }
func (upper) Recycle(slot int, reason string)                               {}

// The primary serves its end of a pair; the worker, usually another process
// given the other end as an inherited fd and calling Dial, delegates work.
func Example() {
	primary, worker, err := ipc.Pair()
	if err != nil {
		fmt.Println(err)
		return
	}
	conn := ipc.Serve(primary, 0, 0, upper{}, ipc.ConnOptions{})
	defer func() { _ = conn.Close(); <-conn.Done() }()

	ctx := context.Background()
	client, err := ipc.NewClient(ctx, worker, 0, 1) // in a worker: ipc.Dial(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = client.Close(); <-client.Done() }()

	reply, err := client.Delegate(ctx, "upper", "baa")
	fmt.Println(string(reply), err)
	_, err = client.Delegate(ctx, "lower", "BAA")
	fmt.Println(errors.Is(err, ipc.ErrNoHandler))
	// Output:
	// "BAA" <nil>
	// true
}
