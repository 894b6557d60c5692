// Part of loadConfig (not for other modules): [s3] completed from the AWS conventions.
#pragma once

#include "common/config/config.h"

namespace tidemark {

// Fills what the configuration leaves open for repo.type = "s3" from the AWS conventions: region
// (AWS_REGION, AWS_DEFAULT_REGION, else us-east-1), endpoint (AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL, else AWS's), credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else a
// profile of ~/.aws/credentials). `pathGiven`: repo.path was set (else the bucket's root).
// Throws Error(Config) naming what is missing or half set.
void resolveS3(Config& config, const Environment& env, bool pathGiven);

}  // namespace tidemark
