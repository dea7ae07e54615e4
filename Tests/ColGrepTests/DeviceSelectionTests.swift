@testable import ColGrep
import Foundation
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

/// `--devices` narrows what the driver sees, so its initialisation pays only for the selected GPUs.
@Suite struct VisibleDeviceNarrowingTests {
    @Test func selectedOrdinalsBecomeTheVisibleList() {
        let pick = DeviceSelection.narrowedVisibleDevices
        // Unset: the driver's own numbering.
        #expect(pick(.ordinals([0]), nil, 4) == "0")
        #expect(pick(.ordinals([2, 0]), nil, 4) == "2,0")
        // Set by the user: ordinals count within their list (UUIDs and MIG names pass through).
        #expect(pick(.ordinals([1]), "2,3", 4) == "3")
        #expect(pick(.ordinals([0, 1]), "GPU-aa, GPU-bb ,GPU-cc", nil) == "GPU-aa,GPU-bb")
    }

    @Test func nothingChangesWithoutASelectionOrForAnOrdinalOutOfRange() {
        let pick = DeviceSelection.narrowedVisibleDevices
        #expect(pick(.all, nil, 4) == nil)
        #expect(pick(.none, nil, 4) == nil)
        #expect(pick(.ordinals([4]), nil, 4) == nil)
        #expect(pick(.ordinals([2]), "0,1", 4) == nil)
        // No driver listing and nothing set: no GPU to narrow.
        #expect(pick(.ordinals([0]), nil, nil) == nil)
        // A malformed list is left to the driver.
        #expect(pick(.ordinals([0]), "0,,1", nil) == nil)
    }

    /// A listed selection is applied to the driver's list and stays a list, so that the run-size narrowing
    /// (for `all` only) never opens fewer GPUs than were listed: `--devices 0,1` once opened one.
    @Test func aListedSelectionIsAppliedOnceAndNeverCutByTheRunSize() {
        let entries = DeviceSelection.selectionEntries(["COLGREP_GPU_DEVICES": "0,2"], installed: 4)
        #expect(entries == ["CUDA_VISIBLE_DEVICES": "0,2", "COLGREP_GPU_DEVICES": "0,1"])
        let fake = FakeGPUEnvironment(entries ?? [:], installed: 4)
        let narrowing = RunSizedGPUNarrowing(environment: fake.environment)
        narrowing.allow()
        #expect(narrowing.narrowableCount == nil)
        #expect(narrowing.narrow(toFirst: 1) == nil)
        #expect(fake["CUDA_VISIBLE_DEVICES"] == "0,2")
        // The renumbered selection opens exactly the listed GPUs.
        let inventory = GPUInventory.resolve(try! DeviceSelection(parsing: entries?["COLGREP_GPU_DEVICES"]), visible: 2, description: nil)
        #expect(inventory.ordinals == [0, 1])
        // Within the user's own list, and where nothing is listed, nothing is set.
        #expect(DeviceSelection.selectionEntries(["COLGREP_GPU_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb"], installed: 8)
                == ["CUDA_VISIBLE_DEVICES": "GPU-bb", "COLGREP_GPU_DEVICES": "0"])
        for selection in [nil, "all", "none", "7", "0,x"] as [String?] {
            var env: [String: String] = [:]
            env["COLGREP_GPU_DEVICES"] = selection
            #expect(DeviceSelection.selectionEntries(env, installed: 4) == nil, "\(selection ?? "unset")")
        }
    }

    @Test func theDriversListingIsCountedWithoutTheDriver() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpus-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(DeviceSelection.installedGPUCount(procDirectory: dir.path) == nil)
        for bus in ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(bus), withIntermediateDirectories: true)
        }
        #expect(DeviceSelection.installedGPUCount(procDirectory: dir.path) == 3)
    }
}
