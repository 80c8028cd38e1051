/// The release this build belongs to: `dms-settingsd --version`, `dmsctl --version`,
/// ServerInfo's `server_version` and both programs' names on the wire say the same.
public enum Release {
  /// The version, as `MAJOR.MINOR.PATCH`.
  public static let version = "0.3.0"
}
