import Testing
@testable import ColGrep

struct ParallelMapTests {
    @Test func keepsInputOrderForLargeAndSmallArrays() {
        for count in [0, 1, 31, 32, 1_003] {
            let input = Array(0..<count)
            #expect(input.parallelMap { $0 * 3 + 1 } == input.map { $0 * 3 + 1 })
        }
    }
}
