import Foundation

/// Reads a small JSON object file of a model folder, turning every failure into an `EncoderError` naming it.
enum JSONFile {
    static func object(at url: URL, required: Bool = true) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required {
                throw EncoderError.missingFile(url, hint: "a model folder needs it; download the model again or pass a complete folder")
            }
            return nil
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw EncoderError.invalidFile(url, reason: "cannot read it (\(error.localizedDescription))")
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw EncoderError.invalidFile(url, reason: "not a JSON object (malformed or truncated)")
        }
        return object
    }

    static func array(at url: URL) throws -> [Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let data = try? Data(contentsOf: url), let parsed = try? JSONSerialization.jsonObject(with: data),
              let array = parsed as? [Any] else {
            throw EncoderError.invalidFile(url, reason: "not a JSON array (malformed or truncated)")
        }
        return array
    }
}

/// Typed look-ups in a parsed JSON object; a present key of the wrong type is an error naming the file.
struct JSONFields {
    /// JSON `true`/`false` arrive as NSNumber too; only their objCType ("c") tells them from 0 and 1.
    static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    let object: [String: Any]
    let url: URL

    func int(_ key: String) throws -> Int? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if let number = value as? NSNumber, !Self.isBoolean(value), number.doubleValue == number.doubleValue.rounded() { return number.intValue }
        throw EncoderError.invalidFile(url, reason: "\"\(key)\" should be an integer")
    }

    func requiredInt(_ key: String) throws -> Int {
        guard let value = try int(key) else { throw EncoderError.invalidFile(url, reason: "\"\(key)\" is missing") }
        guard value > 0 else { throw EncoderError.invalidFile(url, reason: "\"\(key)\" must be positive, is \(value)") }
        return value
    }

    func double(_ key: String) throws -> Double? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if let number = value as? NSNumber, !Self.isBoolean(value) { return number.doubleValue }
        throw EncoderError.invalidFile(url, reason: "\"\(key)\" should be a number")
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if Self.isBoolean(value), let flag = value as? Bool { return flag }
        throw EncoderError.invalidFile(url, reason: "\"\(key)\" should be true or false")
    }

    func string(_ key: String) throws -> String? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if let text = value as? String { return text }
        throw EncoderError.invalidFile(url, reason: "\"\(key)\" should be a string")
    }

    func strings(_ key: String) throws -> [String]? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if let list = value as? [String] { return list }
        throw EncoderError.invalidFile(url, reason: "\"\(key)\" should be a list of strings")
    }
}
