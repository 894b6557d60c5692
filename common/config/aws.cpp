// The AWS conventions for what [s3] leaves open: region, endpoint and credentials from the AWS_*
// environment variables and the shared credentials file, as the AWS CLI and SDKs read them.
#include "common/config/aws.h"

#include <fstream>

#include "common/base/error.h"

namespace tidemark {

namespace {

// ~/.aws/credentials: an INI file of profiles with aws_access_key_id, aws_secret_access_key and
// aws_session_token.
bool readSharedCredentials(const std::string& file, const std::string& profile, Config::S3& s3) {
  std::ifstream in(file);
  if (!in) return false;
  std::string line, section;
  bool found = false;
  auto trim = [](std::string t) {
    t.erase(0, t.find_first_not_of(" \t\r"));
    t.erase(t.find_last_not_of(" \t\r") + 1);
    return t;
  };
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    auto eq = line.find('=');
    if (section != profile || eq == std::string::npos) continue;
    std::string name = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (name == "aws_access_key_id")
      s3.accessKeyId = value, found = true;
    else if (name == "aws_secret_access_key")
      s3.secretAccessKey = value;
    else if (name == "aws_session_token")
      s3.sessionToken = value;
  }
  return found;
}

}  // namespace

void resolveS3(Config& config, const Environment& env, bool pathGiven) {
  auto get = [&](const char* name) {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  auto& s3 = config.s3;
  if (s3.bucket.empty())
    throw Error(ErrorCode::Config, "repo.type is 's3' but s3.bucket is not set",
                "set s3.bucket (or TIDEMARK_S3_BUCKET) to the bucket holding the repository");
  // A value from AWS's variables counts as an override (Config::Sources): a command PostgreSQL
  // runs for this configuration repeats it as a flag.
  auto fromEnvironment = [&](std::string& value, const char* flag, const char* name) {
    if (!value.empty() || get(name).empty()) return;
    value = get(name);
    config.sources.overrides.emplace_back(flag, value);
  };
  fromEnvironment(s3.region, "s3-region", "AWS_REGION");
  fromEnvironment(s3.region, "s3-region", "AWS_DEFAULT_REGION");
  if (s3.region.empty()) s3.region = "us-east-1";
  fromEnvironment(s3.endpoint, "s3-endpoint", "AWS_ENDPOINT_URL_S3");
  fromEnvironment(s3.endpoint, "s3-endpoint", "AWS_ENDPOINT_URL");
  if (s3.endpoint.empty()) s3.endpoint = "https://s3." + s3.region + ".amazonaws.com";
  if (s3.accessKeyId.empty() != s3.secretAccessKey.empty())
    throw Error(ErrorCode::Config,
                s3.accessKeyId.empty() ? "s3.secret-access-key is set but s3.access-key-id is not"
                                       : "s3.access-key-id is set but s3.secret-access-key is not",
                "set both, or neither to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                "~/.aws/credentials");
  if (s3.accessKeyId.empty() &&
      get("AWS_ACCESS_KEY_ID").empty() != get("AWS_SECRET_ACCESS_KEY").empty())
    throw Error(ErrorCode::Config,
                get("AWS_ACCESS_KEY_ID").empty()
                    ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
                    : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
                "set both in the environment, or neither");
  if (s3.accessKeyId.empty() && !get("AWS_ACCESS_KEY_ID").empty()) {
    // Not an override: without its secret, a flag would only make the command fail otherwise.
    s3.accessKeyId = get("AWS_ACCESS_KEY_ID");
    s3.secretAccessKey = get("AWS_SECRET_ACCESS_KEY");
    s3.sessionToken = get("AWS_SESSION_TOKEN");
    config.sources.environmentSecrets.push_back("AWS_SECRET_ACCESS_KEY");
    if (!s3.sessionToken.empty()) config.sources.environmentSecrets.push_back("AWS_SESSION_TOKEN");
  }
  if (s3.accessKeyId.empty()) {
    std::string file = get("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty() && !get("HOME").empty()) file = get("HOME") + "/.aws/credentials";
    std::string profile = get("AWS_PROFILE").empty() ? "default" : get("AWS_PROFILE");
    if (!file.empty() && readSharedCredentials(file, profile, s3))
      config.sources.credentialsFile = file;
  }
  if (s3.accessKeyId.empty() || s3.secretAccessKey.empty())
    throw Error(ErrorCode::Config, "no S3 credentials found",
                "set s3.access-key-id and s3.secret-access-key in the configuration file, or "
                "AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials (AWS_PROFILE)");
  // For s3, repo.path is a key prefix; the posix default means nothing there: use the bucket root.
  if (!pathGiven) config.repo.path = "/";
}

}  // namespace tidemark
