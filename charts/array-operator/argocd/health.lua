-- Argo CD health check for every array-operator.io kind (StorageArray, Lun,
-- IscsiTarget, SnapshotSchedule, ReplicationPlan, VirtualMachine): the same
-- script under resource.customizations.health.array-operator.io_<Kind>
-- (docs/gitops.md). Argo CD does not read kstatus for custom resources, so
-- this reads the conditions the operator writes: Ready, Reconciling and
-- Stalled, each with the observedGeneration it was computed for.
local hs = {}

local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- A condition written for an older generation says nothing about the spec
-- Argo CD just applied (kstatus' rule).
local function current(c)
  local generation = obj.metadata.generation
  local observed = c.observedGeneration
  if observed == nil and obj.status ~= nil then
    observed = obj.status.observedGeneration
  end
  if generation == nil or observed == nil then
    return true
  end
  return observed >= generation
end

local function said(c, fallback)
  local reason = c.reason or fallback
  if c.message ~= nil and c.message ~= "" then
    return reason .. ": " .. c.message
  end
  return reason
end

local annotations = obj.metadata.annotations or {}
if annotations["array-operator.io/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "paused (annotation array-operator.io/paused): the operator makes no array call"
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "suspended (spec.suspend)"
  return hs
end

local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator's first status"
  return hs
end
if not current(ready) then
  hs.status = "Progressing"
  hs.message = "the operator has not reconciled generation " .. tostring(obj.metadata.generation) .. " yet"
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" and current(stalled) then
  -- A person must act (InvalidSpec, Conflict, CredentialsRefused, ...).
  hs.status = "Degraded"
  hs.message = said(stalled, "Stalled")
  return hs
end

if obj.metadata.deletionTimestamp ~= nil then
  -- The finalizer runs: removing (or retaining) the array object.
  hs.status = "Progressing"
  hs.message = "deleting: " .. said(ready, "Ready")
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = said(ready, "Ready")
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" and current(reconciling) then
  -- Retrying after an error (an unreachable array, an array error) is
  -- Degraded, so Argo CD shows it; work under way is Progressing.
  local retrying = {
    RetryingAfterError = true,
    ArrayUnreachable = true,
    KubernetesApiError = true,
  }
  if retrying[reconciling.reason] then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = said(ready, "not Ready") .. " (" .. said(reconciling, "Reconciling") .. ")"
  return hs
end

-- Not Ready, and the operator is not working on it (drift it only
-- observes, an array object it cannot correct).
hs.status = "Degraded"
hs.message = said(ready, "not Ready")
return hs
