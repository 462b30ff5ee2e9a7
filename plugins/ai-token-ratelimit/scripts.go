package main

// This file holds the two Lua scripts the plugin runs with EVAL, one per
// phase. Both reply {limit, used, ttl}: the window's size, the tokens
// counted in it so far and the seconds until it resets. They run on a
// real Redis and on Sluice's embedded store alike (only GET, TTL, INCRBY
// and EXPIRE).

// checkScript reads a window without changing it (request phase).
// KEYS[1] the window's key; ARGV[1] limit, ARGV[2] window seconds. A key
// that does not exist yet, or has lost its expiry, reports the full
// window as its reset time.
const checkScript = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  ttl = window
end
return {limit, used, ttl}
`

// chargeScript adds the tokens a response used to its window (response
// phase). KEYS[1] the window's key; ARGV[1] limit, ARGV[2] window seconds,
// ARGV[3] tokens. The first charge opens the window (sets the expiry); a
// key found without expiry gets one, so a window always ends.
const chargeScript = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local used = redis.call('INCRBY', KEYS[1], tonumber(ARGV[3]))
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], window)
  ttl = window
end
return {limit, used, ttl}
`
