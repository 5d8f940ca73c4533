-- wrk script of bench/scim_load.sh: GET /Users?filter=userName eq "…" for a userName drawn at
-- random from $SCIM_NAMES (one a line) each request, with the bearer token in $SCIM_TOKEN.
local token = os.getenv("SCIM_TOKEN")
local file = os.getenv("SCIM_NAMES")
local root = os.getenv("SCIM_PATH") or "/scim/v2"
local paths = {}

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Each wrk thread runs this file in its own Lua state: encode the paths once, up front.
for name in io.lines(file) do
  paths[#paths + 1] = root .. "/Users?filter=" .. encode('userName eq "' .. name .. '"')
end
math.randomseed(os.time() + tonumber(tostring(paths):match("0x(%x+)") or "0", 16))
local headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/scim+json" }

request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
