import ColGrep
import Testing

/// `--devices` / `COLGREP_GPU_DEVICES`: parsing and how a selection meets the visible GPUs.
struct DeviceSelectionTests {
    @Test func parsesAllNoneAndLists() throws {
        #expect(try DeviceSelection(parsing: nil) == .all)
        #expect(try DeviceSelection(parsing: " ALL ") == .all)
        #expect(try DeviceSelection(parsing: "none") == .none)
        #expect(try DeviceSelection(parsing: "0, 2") == .ordinals([0, 2]))
    }

    @Test func rejectsMalformedSelectionsNamingTheFlag() {
        for text in ["1,,2", "-1", "gpu0", "0,0"] {
            do {
                _ = try DeviceSelection(parsing: text)
                Issue.record("accepted '\(text)'")
            } catch {
                #expect("\(error)".contains("--devices"))
            }
        }
    }

    @Test func allUsesEveryVisibleGPUAndListsAreChecked() {
        #expect(GPUInventory.resolve(.all, visible: 4, description: "x").ordinals == [0, 1, 2, 3])
        #expect(GPUInventory.resolve(.ordinals([2, 0]), visible: 4, description: "x").ordinals == [2, 0])
        let missing = GPUInventory.resolve(.ordinals([0, 3]), visible: 2, description: "x")
        #expect(missing.count == 0)
        #expect(missing.unavailableReason?.contains("GPU 3") == true)
        #expect(missing.unavailableReason?.contains("2 CUDA device(s)") == true)
        #expect(GPUInventory.resolve(.none, visible: 2, description: "x").count == 0)
        #expect(GPUInventory.resolve(.all, visible: 0, description: nil).count == 0)
    }

    @Test func aMalformedEnvironmentSelectionMakesTheGPUUnavailableWithTheReason() {
        let inventory = GPUInventory.current(environment: ["COLGREP_GPU_DEVICES": "zero"])
        #expect(inventory.count == 0)
        #expect(inventory.unavailableReason?.contains("--devices") == true)
    }
}
