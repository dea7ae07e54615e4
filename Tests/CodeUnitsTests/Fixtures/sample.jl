using LinearAlgebra

const LIMIT = 5

"""Adds numbers."""
function add(a, b)
    return a + b
end

struct Point
    x::Float64
end

square(x) = x * x
