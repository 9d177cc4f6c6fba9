package ipc

import (
	"context"
	"fmt"
	"sync"
)

// subscription is one Subscribe call's channel.
type subscription struct {
	ch chan Message
}

// Subscribe returns a channel receiving the primary's publishes on topic,
// and a function that cancels the subscription and closes the channel. The
// channel is also closed when the connection ends. Topic "" receives the
// primary's broadcasts, which reach every worker without a subscribe
// message. The channel holds SubscriptionBuffer messages; publishes that
// find it full are dropped. A topic longer than MaxName, or one more topic
// than MaxTopics or MaxTopicBytes allow, is refused with an error matching
// ErrLimit.
func (c *Client) Subscribe(topic string) (<-chan Message, func(), error) {
	s := &subscription{ch: make(chan Message, SubscriptionBuffer)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		close(s.ch)
		return s.ch, func() {}, nil
	}
	if len(c.subs[topic]) == 0 && topic != "" {
		if err := c.topicFits(topic); err != nil {
			return nil, nil, err
		}
		c.sendLocked(&Message{T: MsgSubscribe, Topic: topic})
	}
	c.subs[topic] = append(c.subs[topic], s)
	var once sync.Once
	return s.ch, func() { once.Do(func() { c.unsubscribe(topic, s) }) }, nil
}

// topicFits checks that subscribing to one more topic stays within the
// limits the primary enforces; c.mu is held.
func (c *Client) topicFits(topic string) error {
	if len(topic) > MaxName {
		return fmt.Errorf("ipc: %w: topic of %d bytes, limit %d", ErrLimit, len(topic), MaxName)
	}
	n, bytes := 1, len(topic)
	for t := range c.subs {
		if t != "" {
			n, bytes = n+1, bytes+len(t)
		}
	}
	switch {
	case n > MaxTopics:
		return fmt.Errorf("ipc: %w: more than %d topics", ErrLimit, MaxTopics)
	case bytes > MaxTopicBytes:
		return fmt.Errorf("ipc: %w: topics of more than %d bytes together", ErrLimit, MaxTopicBytes)
	}
	return nil
}

// unsubscribe removes s from topic's subscribers and closes its channel,
// unless the connection's end already did.
func (c *Client) unsubscribe(topic string, s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.subs[topic]
	for i, x := range ss {
		if x != s {
			continue
		}
		close(s.ch)
		ss = append(ss[:i], ss[i+1:]...)
		if len(ss) > 0 {
			c.subs[topic] = ss
			return
		}
		delete(c.subs, topic)
		if topic != "" {
			c.sendLocked(&Message{T: MsgUnsubscribe, Topic: topic})
		}
		return
	}
}

// sendLocked queues m while c.mu is held, so that subscribe and
// unsubscribe messages leave in the order of the local changes.
func (c *Client) sendLocked(m *Message) {
	b, err := encode(m)
	if err == nil {
		err = c.out.push(b)
	}
	if err != nil {
		c.log.Debug("ipc: message not sent", "t", m.T, "err", err)
	}
}

// deliverPublish hands a publish to the topic's subscribers without
// blocking.
func (c *Client) deliverPublish(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.subs[m.Topic] {
		select {
		case s.ch <- *m:
		default:
			c.log.Debug("ipc: subscriber full, publish dropped", "topic", m.Topic)
		}
	}
}

// OnRebalance sets the function called with the worker's cluster index,
// the cluster total and the view's epoch whenever the primary announces a
// new view. If a view arrived before fn was set, fn is called with the
// latest one at once. fn runs on the client's callback goroutine, one call
// at a time and in order with OnPrepare's; it may see the same view twice.
func (c *Client) OnRebalance(fn func(index, total, epoch int)) {
	c.mu.Lock()
	c.onRebalance = fn
	view := c.view
	c.mu.Unlock()
	if view != nil && fn != nil {
		c.queueEvent(view)
	}
}

// OnPrepare sets the function called when the primary announces a coming
// view: it should quiesce work tied to the current index and return nil
// when done, or an error; the primary is then told so (prepared). Without
// it, prepares are acknowledged at once. ctx ends when the connection
// does. fn runs on the client's callback goroutine, like OnRebalance's.
func (c *Client) OnPrepare(fn func(ctx context.Context, index, total, epoch int) error) {
	c.mu.Lock()
	c.onPrepare = fn
	c.mu.Unlock()
}

// queueEvent queues a rebalance or prepare for the callback goroutine.
func (c *Client) queueEvent(m *Message) {
	c.mu.Lock()
	if m.T == MsgRebalance {
		c.view = m
	}
	c.events = append(c.events, m)
	c.mu.Unlock()
	select {
	case c.eventWake <- struct{}{}:
	default:
	}
}

// eventLoop runs the OnRebalance and OnPrepare callbacks in order until the
// connection ends.
func (c *Client) eventLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.eventWake:
		}
		c.mu.Lock()
		events := c.events
		c.events = nil
		onRebalance, onPrepare := c.onRebalance, c.onPrepare
		c.mu.Unlock()
		for _, m := range events {
			if c.ctx.Err() != nil {
				return
			}
			switch {
			case m.T == MsgRebalance && onRebalance != nil:
				onRebalance(m.Index, m.Total, m.Epoch)
			case m.T == MsgPrepare:
				ack := &Message{T: MsgPrepared, Epoch: m.Epoch}
				if onPrepare != nil {
					if err := onPrepare(c.ctx, m.Index, m.Total, m.Epoch); err != nil {
						ack.Error = truncate(err.Error(), MaxText)
						if ack.Error == "" {
							ack.Error = "prepare failed"
						}
					}
				}
				_ = c.send(ack)
			}
		}
	}
}
