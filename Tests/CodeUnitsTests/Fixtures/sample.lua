local json = require("json")

--- Adds numbers.
function add(a, b)
  return a + b
end

local function helper(x)
  print(x)
end

function M.method(self, y)
  for i = 1, y do print(i) end
end
