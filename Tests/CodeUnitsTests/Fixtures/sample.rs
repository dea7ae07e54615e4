use std::collections::HashMap;

const LIMIT: usize = 4;

/// A point in space.
#[derive(Debug)]
pub struct Point {
    x: i32,
}

impl Point {
    /// Makes a point.
    pub fn new(x: i32) -> Self {
        let p = Point { x };
        println!("{}", x);
        p
    }
}

pub trait Shape {
    fn area(&self) -> f64;
}

fn main() {
    let m: HashMap<i32, i32> = HashMap::new();
    match m.get(&1) {
        Some(v) => Point::new(*v),
        None => Point::new(0),
    };
}
