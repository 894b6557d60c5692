// tidemark keygen: makes a master key file.
#include "ctl/keygen.h"

#include <unistd.h>

#include <cstdio>

#include "common/repo/keys.h"

namespace tidemark::ctl {

int keygen(const Config&, const CommandLine& commandLine) {
  std::string path = commandLine.positional.at(0);
  if (path.empty() || path.front() != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr) path = std::string(cwd) + "/" + path;
  }
  std::string id = repo::writeNewKeyFile(path);
  std::printf("wrote a new key to %s (mode 0600), key id %s\n\n", path.c_str(), id.c_str());
  std::printf(
      "use it in the configuration (and keep a copy elsewhere: without it, nothing encrypted with "
      "it can\n"
      "be read):\n\n[encryption]\ntype = \"aes-256-gcm\"\nkey-file = \"%s\"\n",
      path.c_str());
  return 0;
}

}  // namespace tidemark::ctl
