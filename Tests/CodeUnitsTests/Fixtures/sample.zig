const std = @import("std");

const Point = struct {
    x: i32,

    pub fn init(x: i32) Point {
        return Point{ .x = x };
    }
};

/// Adds two numbers.
pub fn add(a: i32, b: i32) i32 {
    std.debug.print("{}", .{a});
    return a + b;
}
