#pragma once

#include <sys/types.h>

#include <boost/asio/ssl/context.hpp>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"

namespace picket::http::internal {

// Builds a server SSL context from PEM text: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key
// exchange with AEAD ciphers; no compression, no renegotiation. Fails if either PEM does not
// parse or the key does not belong to the certificate; errors name `cert_file` or `key_file`,
// where the text came from.
Result<std::shared_ptr<boost::asio::ssl::context>> makeServerContext(const std::string& cert_pem,
                                                                     const std::string& key_pem,
                                                                     const std::string& cert_file,
                                                                     const std::string& key_file);

// Holds the current server context for a certificate/key file pair and replaces it when the files
// change, so that certificate rotation needs no restart. Connections keep the context they began
// with, so a swap never disturbs a handshake in progress. Thread-safe.
class TlsContextProvider {
 public:
  // Loads the pair; an error names the file at fault.
  static Result<std::unique_ptr<TlsContextProvider>> create(std::string cert_file,
                                                            std::string key_file);

  // The context new connections should use.
  std::shared_ptr<boost::asio::ssl::context> current() const;

  // Loads the pair again if either file's identity (device, inode, size, change times) differs
  // from the last attempt. Returns true if a new context is now current, false if nothing
  // changed, an error if the changed pair failed to load (the old context stays current; the same
  // files are not retried until they change again).
  Result<bool> reloadIfChanged();

 private:
  // What stat() says about a file; a rewrite, a rename over it or a Kubernetes secret volume's
  // symlink swap each change at least one field.
  struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    timespec modified{};
    timespec changed{};
    bool operator==(const FileIdentity& other) const;
  };

  TlsContextProvider(std::string cert_file, std::string key_file);
  static Result<FileIdentity> identify(const std::string& path);
  Result<std::shared_ptr<boost::asio::ssl::context>> load() const;

  const std::string cert_file_;
  const std::string key_file_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;
  // Guarded by reload_mu_: only one reload runs at a time.
  std::mutex reload_mu_;
  FileIdentity cert_seen_;
  FileIdentity key_seen_;
};

}  // namespace picket::http::internal
