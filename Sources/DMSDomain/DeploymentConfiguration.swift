/// The deployment configuration (the original's `Web.config`), CFG-1 … CFG-8, plus
/// the closed lists of the shared section. Read at start-up; not editable over RPC.
public struct DeploymentConfiguration: Sendable, Hashable {
  /// CFG-2: the KSeF environment.
  public enum KSeFWorkMode: String, Sendable, CaseIterable {
    case demo = "Demo"
    case production = "Production"
    case test = "Test"
  }

  /// CFG-5, CFG-6: where files go.
  public enum FileDestination: String, Sendable, CaseIterable {
    /// The database.
    case database = "DO"
    /// External storage (STORE).
    case externalStorage = "IBARD"
  }

  /// CFG-8: the e-Delivery environment.
  public enum EDeliveryEnvironment: String, Sendable, CaseIterable {
    case production
    case test
  }

  /// CFG-1.
  public var mode: ServerMode
  /// CFG-2.
  public var ksefWorkMode: KSeFWorkMode
  /// CFG-3.
  public var deleteMailsAfterSending: Bool
  /// CFG-4.
  public var useNewModeOfDocumentPermissions: Bool
  /// CFG-5.
  public var destinationAttachmentWorkflow: FileDestination
  /// CFG-6.
  public var destinationAttachmentsRepository: FileDestination
  /// CFG-7.
  public var useRepository: Bool
  /// CFG-8.
  public var eDeliveryEnvironment: EDeliveryEnvironment
  /// ERP-S1's and ERP-S2's lists.
  public var sharedChoices: SharedSettings.Choices
  /// Single-company mode's one company, and its code after a switch to
  /// multi-company mode (CFG-9).
  public var singleCompanyCode: String

  /// A configuration; the defaults are the first values of the spec's lists.
  public init(
    mode: ServerMode = .singleCompany,
    ksefWorkMode: KSeFWorkMode = .demo,
    deleteMailsAfterSending: Bool = false,
    useNewModeOfDocumentPermissions: Bool = false,
    destinationAttachmentWorkflow: FileDestination = .database,
    destinationAttachmentsRepository: FileDestination = .database,
    useRepository: Bool = false,
    eDeliveryEnvironment: EDeliveryEnvironment = .production,
    sharedChoices: SharedSettings.Choices = .defaults,
    singleCompanyCode: String = "MAIN"
  ) {
    self.mode = mode
    self.ksefWorkMode = ksefWorkMode
    self.deleteMailsAfterSending = deleteMailsAfterSending
    self.useNewModeOfDocumentPermissions = useNewModeOfDocumentPermissions
    self.destinationAttachmentWorkflow = destinationAttachmentWorkflow
    self.destinationAttachmentsRepository = destinationAttachmentsRepository
    self.useRepository = useRepository
    self.eDeliveryEnvironment = eDeliveryEnvironment
    self.sharedChoices = sharedChoices
    self.singleCompanyCode = singleCompanyCode
  }
}
