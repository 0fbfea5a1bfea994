/*
 * mailroom: actors' mailboxes on Apache Kafka.
 *
 * The umbrella header. What is not declared under include/mailroom/ is not
 * API. Every symbol starts with mr_ or MR_.
 */
#ifndef MAILROOM_H
#define MAILROOM_H

#include "mailroom/version.h"
#include "mailroom/error.h"
#include "mailroom/envelope.h"
#include "mailroom/client.h"
#include "mailroom/consumer.h"
#include "mailroom/actor.h"
#include "mailroom/mirror.h"
#include "mailroom/router.h"
#include "mailroom/testkit.h"

#endif
