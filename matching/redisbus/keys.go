// Package redisbus carries Satu's commands and events through Redis: the
// shard's inbox stream is the sequencer and journal, the events stream is the
// engine's output, and Runner is the loop that applies one to produce the
// other. Every key of a shard carries the shard's {hash tag}, so scripts work
// unchanged on Redis Cluster.
package redisbus

import "fmt"

// Keys names a shard's Redis keys.
type Keys struct {
	Shard  string
	Inbox  string // stream of commands, appended by gateways
	Events string // stream of events, IDs "seq-index", written only by the engine
	Engine string // hash: seq and inbox ID of the last command whose events are written
}

// KeysFor returns the keys of a shard, e.g. satu:{s1}:inbox.
func KeysFor(shard string) Keys {
	p := fmt.Sprintf("satu:{%s}:", shard)
	return Keys{Shard: shard, Inbox: p + "inbox", Events: p + "events", Engine: p + "engine"}
}
