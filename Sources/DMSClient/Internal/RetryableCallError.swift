import DMSRPC

/// A call the server did not run (refused by GOAWAY, or never sent): safe to retry
/// on another connection.
struct RetryableCallError: Error {
  let rpcError: RPCError
}
