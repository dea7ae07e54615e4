import Foundation

let maxCount = 3

/// A counter.
class Counter: Base {
    var count = 0

    init(start: Int) {
        self.count = start
    }

    /// Increments.
    func increment(by step: Int) -> Int {
        guard step > 0 else { return count }
        count += step
        print(count)
        return count
    }
}

protocol Resettable {
    func reset()
}

func helper(_ x: Int) -> String {
    return String(x)
}
