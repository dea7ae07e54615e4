import Foundation
import Testing
@testable import ColGrep

@Suite struct ProcessMemorySettingsTests {
    /// glibc accepts every setting (a wrong option code or a value beyond glibc's limits, such as an
    /// mmap threshold over 32 MiB, makes mallopt return 0).
    @Test func glibcAcceptsEverySetting() {
        #if os(Linux)
        #expect(ProcessMemorySettings.apply(environment: [:]))
        #endif
    }

    @Test func theEnvironmentKeepsGlibcsDefaults() {
        #expect(!ProcessMemorySettings.apply(environment: [ProcessMemorySettings.environmentKey: "1"]))
    }
}
