-- Argo CD health check for hpc.shanhe.com/HpcCluster (hpc-user-operator).
--
-- Reads what the operator writes: status.observedGeneration and the kstatus conditions
-- (Ready always; Reconciling True while a new generation is retried; Stalled True when only a
-- spec or Secret change can help). Written for Argo CD's default sandbox for argocd-cm scripts:
-- the base and table libraries only, so no string.* calls and no useOpenLibs needed.
--
-- First match wins:
--   no Ready condition, or observedGeneration
--   behind metadata.generation          Progressing  the operator has not acted on this spec yet
--   Stalled=True                        Degraded     InvalidSpec, CredentialsNotFound,
--                                                    AuthenticationFailed: stuck until someone acts
--   Ready=True, reason Suspended        Suspended    spec.suspend: no API calls, no writes
--   Ready=True                          Healthy      "42 users synced"
--   Ready=False, RemovalHeld,
--   ConfigMapTooLarge or
--   ConfigMapConflict                   Degraded     even for a new generation: the operator retries,
--                                                    but the usual cause is the spec (a narrower
--                                                    filter, too many users, a name already taken)
--                                                    and the way out a person's decision, so
--                                                    Progressing would hide it
--   Reconciling=True                    Progressing  a new generation not synced yet and being
--                                                    retried (ListUsersFailed, QuotaExceeded)
--   Ready=False, any other reason       Degraded     ListUsersFailed, QuotaExceeded after a good
--                                                    sync: the ConfigMaps keep the last good users,
--                                                    which go stale; the operator retries and this
--                                                    turns Healthy by itself once a sync succeeds

local NEEDS_A_DECISION = { RemovalHeld = true, ConfigMapTooLarge = true, ConfigMapConflict = true }

local function findCondition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function isTrue(condition)
  return condition ~= nil and condition.status == "True"
end

local function describe(reason, message)
  if message == nil or message == "" then
    return reason or ""
  end
  return (reason or "Unknown") .. ": " .. message
end

local hs = {}
local status = obj.status or {}
local generation = obj.metadata.generation
local ready = findCondition(status.conditions, "Ready")

if ready == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to reconcile this HpcCluster"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. generation
    .. " (status is at generation " .. status.observedGeneration .. ")"
  return hs
end

local stalled = findCondition(status.conditions, "Stalled")
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled.reason, stalled.message)
  return hs
end

if isTrue(ready) then
  hs.status = ready.reason == "Suspended" and "Suspended" or "Healthy"
  hs.message = ready.message
  return hs
end

local reconciling = findCondition(status.conditions, "Reconciling")
if isTrue(reconciling) and not NEEDS_A_DECISION[ready.reason] then
  hs.status = "Progressing"
  hs.message = describe(ready.reason, reconciling.message)
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready.reason, ready.message)
return hs
