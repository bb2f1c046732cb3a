-- wrk script for tools/bench-submit.sh: every request submits a new job with its own
-- Idempotency-Key, so each is a durable insert. TOKEN comes from the environment;
-- wrk reports any answer that is not 2xx as "Non-2xx or 3xx responses".
local counter = 0
local tid = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
end
local body = '{"demand":[{"class":"cpu","count":1}],"duration":"1h"}'
local run = tostring(os.time())
request = function()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "wrk-" .. run .. "-" .. tid .. "-" .. counter,
  }
  return wrk.format("POST", "/v1/jobs", headers, body)
end
