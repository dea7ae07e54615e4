import Foundation
import Tensor

/// One projection of the ColBERT head: a sentence-transformers / PyLate `N_Dense/` folder holding
/// `config.json` (`in_features`, `out_features`, `bias`, `activation_function`) and `model.safetensors`
/// (`linear.weight` in PyTorch `out × in` layout, `linear.bias`).
public struct DenseLayer {
    public let inFeatures: Int
    public let outFeatures: Int
    let weight: any DeviceMatrix
    let bias: (any DeviceMatrix)?

    public init(directory: URL, backend: any Backend) throws {
        let configURL = directory.appending(path: "config.json")
        let f = JSONFields(object: try JSONFile.object(at: configURL)!, url: configURL)
        inFeatures = try f.requiredInt("in_features")
        outFeatures = try f.requiredInt("out_features")
        let hasBias = try f.bool("bias") ?? true
        let activation = try f.string("activation_function") ?? "torch.nn.modules.linear.Identity"
        guard activation.hasSuffix("Identity") else {
            throw EncoderError.invalidFile(configURL, reason: "Dense activation \(activation) is not supported (ColBERT heads use Identity)")
        }
        let weightsURL = directory.appending(path: "model.safetensors")
        if !FileManager.default.fileExists(atPath: weightsURL.path),
           FileManager.default.fileExists(atPath: directory.appending(path: "pytorch_model.bin").path) {
            throw EncoderError.missingFile(weightsURL, hint: "only pytorch_model.bin is there; re-save the Dense layer with safetensors")
        }
        let weights = try SafeTensorsFile(url: weightsURL)
        weight = try backend.upload(weights.matrix("linear.weight", shape: [outFeatures, inFeatures]))
        bias = hasBias ? try backend.upload(weights.matrix("linear.bias", shape: [outFeatures])) : nil
        (backend as? any ReducedPrecisionLinear)?.allowReducedPrecision(weight)
    }

    public init(weight: HostMatrix, bias: HostMatrix?, backend: any Backend) throws {
        inFeatures = weight.cols
        outFeatures = weight.rows
        self.weight = try backend.upload(weight)
        self.bias = try bias.map { try backend.upload($0) }
        (backend as? any ReducedPrecisionLinear)?.allowReducedPrecision(self.weight)
    }

    func apply(_ x: any DeviceMatrix, backend: any Backend) throws -> any DeviceMatrix {
        try backend.linear(x, weight: weight, bias: bias, activation: .none, residual: nil)
    }
}
