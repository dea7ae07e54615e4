/// The product version printed by `colgrep --version` and written into index state files.
public enum ColGrepVersion {
    public static let string = "0.1.0"
}
