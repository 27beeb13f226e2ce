/* Fixed names shared by the key module, the agent and the command-line tool. */
#pragma once

#define ETA_BUS_NAME       "org.ecryptfs.TokenAgent1"
#define ETA_OBJECT_PATH    "/org/ecryptfs/TokenAgent1"
#define ETA_INTERFACE      "org.ecryptfs.TokenAgent1"
#define ETA_ERROR_PREFIX   "org.ecryptfs.TokenAgent1.Error."
#define ETA_KEYMOD_ALIAS   "token-agent"

/* Fingerprints: lowercase hex SHA-256 of the SubjectPublicKeyInfo. */
#define ETA_FINGERPRINT_HEX_LEN   64
#define ETA_FINGERPRINT_MIN_PREFIX 16
