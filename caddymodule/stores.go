package caddymodule

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// Stores live in a usage pool so that `caddy reload` keeps the counts of
// the memory store and the connections of Redis clients. Every directive
// of this plugin (ahp, agent_handoff, handshake_prompt) takes its stores
// from here: one memory limiter per process, one Redis client per URL.
var stores = caddy.NewUsagePool()

const memoryStoreKey = "ahp:memory"

type pooledMemory struct{ *limiter.Memory }

func (p pooledMemory) Destruct() error { return p.Close() }

type pooledClient struct{ redis.UniversalClient }

func (p pooledClient) Destruct() error { return p.Close() }

type pooledRedis struct{ *limiter.Redis }

func (p pooledRedis) Destruct() error { return p.Close() }

// storeRefs is what one handler holds from the pool; release gives the
// references back in Cleanup, so a store outlives a reload while any
// handler still uses it.
type storeRefs struct {
	mu   sync.Mutex
	keys []string
}

func (s *storeRefs) hold(key string) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
}

// release drops every reference this handler holds.
func (s *storeRefs) release() {
	if s == nil {
		return
	}
	s.mu.Lock()
	keys := s.keys
	s.keys = nil
	s.mu.Unlock()
	for _, k := range keys {
		_, _ = stores.Delete(k)
	}
}

// memory is the process's in-memory limiter store.
func (s *storeRefs) memory() (*limiter.Memory, error) {
	v, _, err := stores.LoadOrNew(memoryStoreKey, func() (caddy.Destructor, error) {
		return pooledMemory{limiter.NewMemory(limiter.MemoryOptions{})}, nil
	})
	if err != nil {
		return nil, err
	}
	s.hold(memoryStoreKey)
	return v.(pooledMemory).Memory, nil
}

// redisURL resolves a configured Redis URL: "" means the global option
// `{ ahp { redis <url> } }`; placeholders ({env.REDIS_URL}) are replaced.
// directive names the configuration for the error message.
func redisURL(ctx caddy.Context, url, directive string) (string, error) {
	where := ""
	if url == "" {
		app, err := globalApp(ctx)
		if err != nil {
			return "", err
		}
		if app == nil || app.Redis == "" {
			return "", fmt.Errorf("%s: give a URL (%s redis://host:6379/0) or set the global option { ahp { redis <url> } }", directive, directive)
		}
		url, where = app.Redis, " (the global option { ahp { redis <url> } })"
	}
	// A placeholder that comes out empty is an environment variable unset
	// here: redis://{env.REDIS_HOST}:6379 would dial localhost and one
	// without its password fail every decision, both at run time only.
	// The error names the placeholder, never a value.
	resolved, err := caddy.NewReplacer().ReplaceOrErr(url, true, false)
	if err != nil {
		return "", fmt.Errorf("%s: the Redis URL%s: %v; set its environment variable, or leave the placeholder out", directive, where, err)
	}
	return resolved, nil
}

// shownStoreKind is how a config error shows the value written where a
// store kind (memory, redis, off) belongs: quoted when it is a plain word,
// through the URL redaction otherwise. The usual mistake is a Redis URL
// with the keyword `redis` forgotten, and `caddy validate` must not print
// its password.
func shownStoreKind(v string) string {
	if plainWord(v) {
		return strconv.Quote(v)
	}
	return redactURL(v)
}

// urlAsKindHint says what to write when v, given as a store kind in the
// option kindField, is not a plain word (most likely a URL missing its
// keyword); urlField is the JSON field of the URL.
func urlAsKindHint(v, kindField, urlField string) string {
	if plainWord(v) {
		return ""
	}
	return " (a Redis URL goes after the keyword: `" + kindField + " redis <url>`; JSON: \"" + kindField + "\": \"redis\", \"" + urlField + "\": \"<url>\")"
}

// shownOption is how a config error shows a word written where an option
// name belongs: quoted when it could be one (a typo), through the URL
// redaction otherwise. The usual mistake is a value whose keyword was
// forgotten, a Redis URL on its own line, and `caddy validate` must not
// print its password.
func shownOption(v string) string { return shownStoreKind(v) }

func plainWord(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// redisClient is the process's shared client for url (already resolved by
// redisURL). Errors never hold the password.
func (s *storeRefs) redisClient(url string) (redis.UniversalClient, error) {
	// Every Redis user (verified_agents' shared cache alone included)
	// comes here: go-redis's own dial failures go to Caddy's log.
	routeRedisLogs.Do(func() { redis.SetLogger(redisLogger{caddyLog("ahp.redis")}) })
	key := "ahp:redis-client:" + url
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		c, err := newRedisClient(url)
		if err != nil {
			return nil, err
		}
		return pooledClient{c}, nil
	})
	if err != nil {
		return nil, err
	}
	s.hold(key)
	return v.(pooledClient).UniversalClient, nil
}

// redisLimiter is the limiter store over the shared client for url, with
// its own decision timeout and lease setting: sites that differ in them get
// stores of their own (one auto-pipelining loop each) over one connection
// pool; sites that agree share one, and so the leases of their hot keys.
func (s *storeRefs) redisLimiter(url string, timeout time.Duration, noLeases bool) (*limiter.Redis, error) {
	client, err := s.redisClient(url)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = limiter.DefaultRedisTimeout // the store's own default: one key for both spellings
	}
	key := "ahp:redis-limiter:" + timeout.String() + ":" + url
	if noLeases {
		key = "ahp:redis-limiter-exact:" + timeout.String() + ":" + url
	}
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		return pooledRedis{limiter.NewRedis(client, limiter.RedisOptions{Timeout: timeout, NoLeases: noLeases})}, nil
	})
	if err != nil {
		return nil, err
	}
	s.hold(key)
	return v.(pooledRedis).Redis, nil
}

// limiterStore is a rate-limit store: memory, or Redis with the memory
// store as the fallback of on_store_error open (or a 503 when closed).
// onError is told of each Redis failure (metrics); failures are logged at
// most every ten seconds.
func (s *storeRefs) limiterStore(ctx caddy.Context, kind, url string, timeout time.Duration, noLeases, failOpen bool, directive string, logger *zap.Logger, onError func(error)) (limiter.Store, error) {
	memory, err := s.memory()
	if err != nil {
		return nil, err
	}
	switch kind {
	case "", "memory":
		if url != "" {
			// A JSON config naming a Redis without "store": "redis" would
			// otherwise count per instance while the operator believes the
			// limits are shared (agent_handoff refuses the same).
			return nil, fmt.Errorf("%s: a Redis URL (%s) was given without store redis; write `store redis <url>` (JSON: \"store\": \"redis\"), or drop the URL", directive, redactURL(url))
		}
		return memory, nil
	case "redis":
	default:
		return nil, fmt.Errorf("%s %s: must be memory or redis <url>%s", directive, shownStoreKind(kind), urlAsKindHint(kind, "store", "redis"))
	}
	url, err = redisURL(ctx, url, directive+" redis")
	if err != nil {
		return nil, err
	}
	rs, err := s.redisLimiter(url, timeout, noLeases)
	if err != nil {
		return nil, fmt.Errorf("%s redis: %v", directive, err)
	}
	logs := &throttledLog{logger: logger, every: 10 * time.Second}
	return limiter.NewResilient(rs, memory, limiter.ResilientOptions{
		FailOpen: failOpen,
		OnError: func(err error) {
			if onError != nil {
				onError(err)
			}
			logs.warn("rate-limit store failing", err, failOpen)
		},
	}), nil
}

// go-redis prints its own connection-pool complaints to stderr, outside
// Caddy's logs. The logger is process-wide (redis.SetLogger), so it goes
// to a logger of its own, not to one site's, at debug level: the resilient
// store already reports failures, rate-limited.
var routeRedisLogs sync.Once

type redisLogger struct{ logger *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	if c := l.logger.Check(zap.DebugLevel, "go-redis"); c != nil {
		c.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}

// checkZone refuses a zone an operator names that is no name: the README's
// `zone <name>` pasted as it stands would put every site that pasted it in
// one namespace of a shared Redis, and a brace would move the keys' Redis
// Cluster hash tag.
func checkZone(option, zone string) error {
	if zone == "" {
		return nil
	}
	ok := len(zone) <= 64
	for i := 0; ok && i < len(zone); i++ {
		c := zone[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%s %q: a zone is a name of at most 64 letters, digits, '.', '_' and '-' (e.g. shop or shop-eu); instances that share limits name the same one, other sites another", option, zone)
	}
	return nil
}
