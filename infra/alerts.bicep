// Log search alerts over the service's own telemetry (customEvents / customMetrics of the
// Application Insights resource) and the action group that mails someone.
// Event, metric and property names are a contract with src/telemetry/types.ts and
// src/telemetry/records.ts; test/infra/bicep.test.ts checks every name used here against them.

param location string
param tags object
param resourceToken string
param appInsightsId string
param alertEmailAddress string
param rulesUsedAlertPercent int
@description('Alert when the service-tags data a run used is older than this many days.')
param dataAgeAlertDays int = 10
@description('Resource IDs of the target registries: the heartbeat expects a completed run from each.')
param targetRegistryIds array

var emailReceivers = empty(alertEmailAddress) ? [] : [
  {
    name: 'operator'
    emailAddress: alertEmailAddress
    // One payload shape for every alert type (mail, webhook, Logic Apps).
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-acrsync-${resourceToken}'
  // Action groups are global resources.
  location: 'global'
  tags: tags
  properties: {
    // At most 12 characters; shown as the sender of SMS and in mail subjects.
    groupShortName: 'acrsync'
    enabled: true
    emailReceivers: emailReceivers
  }
}

// Failures are reported per registry; a run that failed before it knew its registry (a
// configuration error) is reported as "(none)" so the alert dimension is never empty.
// Poisoned is left to its own alert below: the last delivery's failure, with the real cause, is an
// AllowlistSyncFailed of its own and fires this one already.
var failedQuery = '''
customEvents
| where name == "AllowlistSyncFailed" and tostring(customDimensions.errorType) != "Poisoned"
| extend registry = iff(isempty(tostring(customDimensions.registry)), "(none)", tostring(customDimensions.registry))
| project timestamp, registry, errorType = tostring(customDimensions.errorType), message = tostring(customDimensions.message)
'''

// Dry runs are excluded: whoever asked for a dry run already sees the guard in the response.
var guardQuery = '''
customEvents
| where name == "AllowlistGuardTripped" and tostring(customDimensions.dryRun) == "false"
| project timestamp, registry = tostring(customDimensions.registry), guard = tostring(customDimensions.guard), message = tostring(customDimensions.message)
'''

// Heartbeat: a row for every configured registry without an applied (not dry-run) completion in
// the last 26 hours (a daily schedule plus slack for a slow or retried run). The expected list
// comes from the deployment, so a registry that never ran, or stopped for days, keeps alerting.
// Registries are compared by name (unique in Azure), lower-cased, so the event may carry either
// the resource ID or the name. {0} is the JSON list of names.
var expectedRegistryNames = map(targetRegistryIds, id => toLower(last(split(id, '/'))))
var heartbeatQueryTemplate = '''
let expected = dynamic({0});
let recent = customEvents
    | where timestamp > ago(26h)
    | where name == "AllowlistSyncCompleted" and tostring(customDimensions.dryRun) == "false"
    | project registry = tolower(tostring(split(tostring(customDimensions.registry), "/")[-1]))
    | distinct registry;
print registry = expected
| mv-expand registry to typeof(string)
| join kind=leftanti recent on registry
'''

// The latest rules-used and limit values of each registry; a row when usage is above the
// threshold. {0} is the percentage parameter.
var rulesUsedQueryTemplate = '''
customMetrics
| where name in ("allowlist_rules_used", "allowlist_rules_limit") and tostring(customDimensions.dryRun) == "false"
| extend registry = tostring(customDimensions.registry)
| summarize arg_max(timestamp, value) by registry, name
| summarize rulesUsed = maxif(value, name == "allowlist_rules_used"), ruleLimit = maxif(value, name == "allowlist_rules_limit") by registry
| where ruleLimit > 0 and rulesUsed * 100 > {0} * ruleLimit
'''

// Freshness: Microsoft publishes the file weekly, so data older than the threshold means the
// source chain is broken somewhere (page layout, alias, Discovery API lag, last-good copy) even
// while runs succeed. The latest completion of each registry counts, dry runs included (an HTTP
// plan uses the same chain). {0} is the threshold in days.
var dataAgeQueryTemplate = '''
customEvents
| where name == "AllowlistSyncCompleted" and isnotempty(tostring(customDimensions.dataAgeDays))
| extend registry = tostring(customDimensions.registry)
| summarize arg_max(timestamp, dataAgeDays = todouble(customDimensions.dataAgeDays), sourceKind = tostring(customDimensions.sourceKind), newestChangeNumber = tolong(customDimensions.newestChangeNumber)) by registry
| where dataAgeDays > {0}
'''

// A grant older than its ttl by more than a day: every failed apply run reports each grant past
// its expiry (AllowlistGrantOverdue, the rule is still on the registry); the row stays until an
// AllowlistGrantExpired for the same grant says a run removed it. Runs that do not happen at all
// are the heartbeat alert's.
var grantOverdueQuery = '''
let removed = customEvents
    | where name == "AllowlistGrantExpired"
    | project grantId = tostring(customDimensions.grantId);
customEvents
| where name == "AllowlistGrantOverdue"
| extend grantId = tostring(customDimensions.grantId), expiresAt = todatetime(customDimensions.expiresAt)
| where expiresAt < ago(1d)
| join kind=leftanti removed on grantId
| summarize arg_max(timestamp, *) by grantId
| project timestamp, grantId, expiresAt, registry = tostring(customDimensions.registry), rule = tostring(customDimensions.rule), grantedBy = tostring(customDimensions.grantedBy), reason = tostring(customDimensions.reason)
'''

var actions = {
  actionGroups: [actionGroup.id]
}

resource syncFailedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-failed-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist sync failed'
    description: 'A sync run failed (AllowlistSyncFailed). The registry keeps its previous rules. See errorType and message; the README (Operations, Telemetry) says what to do per error type.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    // Every 5 minutes over the last 15: a failure raises one alert within minutes; the 15-minute
    // window tolerates ingestion delay of a few minutes without missing the row.
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: failedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          // One alert per registry instead of one for all.
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    // Stateful: fires once and resolves itself when no failure is in the window any more.
    autoMitigate: true
    actions: actions
  }
}

resource guardTrippedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-guard-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist sync stopped by a safety guard'
    description: 'A safety guard stopped a sync before any write (AllowlistGuardTripped). Nothing was changed. Read the guard and message; fix the cause or run once with force after review.'
    severity: 2
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: guardQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
            { name: 'guard', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource heartbeatAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-heartbeat-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist sync has not completed for 26 hours'
    description: 'No AllowlistSyncCompleted (applied, not dry run) for a registry in 26 hours. The timer may not run (app stopped, deployment broken, schedule changed) or every run fails. Check the function app and the failure alert.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    // The query filters on 26 hours itself; the window only sets the evaluation bin, and the
    // override gives the query that much history (2 days is the longest override allowed).
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: format(heartbeatQueryTemplate, string(expectedRegistryNames))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource rulesUsedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-capacity-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist above ${rulesUsedAlertPercent} % of the IP rule limit'
    description: 'The last applied run left a registry with more than ${rulesUsedAlertPercent} % of its IP rules in use (allowlist_rules_used vs allowlist_rules_limit). The next service-tag growth may not fit: review hand-made rules, regions and headroom.'
    severity: 2
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    // Runs are daily: look back 2 days so the latest values are always in range.
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: format(rulesUsedQueryTemplate, rulesUsedAlertPercent)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource dataAgeAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-freshness-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist service-tags data older than ${dataAgeAlertDays} days'
    description: 'The latest run of a registry used service-tags data more than ${dataAgeAlertDays} days old (dataAgeDays of AllowlistSyncCompleted; sourceKind says which source served it). Microsoft publishes weekly: the Download Center page or the _Latest alias is failing and the run fell back to the lagging Discovery API or the last-good copy. See README, Operations.'
    severity: 2
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    // Runs are daily: look back 2 days so the latest run of each registry is in range.
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: format(dataAgeQueryTemplate, dataAgeAlertDays)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

resource grantOverdueAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-grant-overdue-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist grant still open a day after it expired'
    description: 'A temporary grant (acr-allowlist-sync grant) expired more than a day ago and its rule is still on the registry: every run since then failed (AllowlistGrantOverdue). Fix the failure (see the sync failed alert), or end it now with acr-allowlist-sync revoke.'
    severity: 2
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    // Runs are daily: two days always hold the latest failed run's report.
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: grantOverdueQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

// Fan-out (SYNC_FANOUT=true): the host gave up on a registry's message after maxDequeueCount (5)
// failed deliveries and moved it to the poison queue, where the poison function reports it
// (AllowlistSyncFailed, errorType Poisoned) and consumes it. The registry is not retried until the
// next scheduled run. The cause is the failure alert of the same registry (the last delivery's
// errorType and message, reported just before); this one says that the retries are spent. A message
// that was not even readable is reported with registry "(unreadable message)".
var poisonedQuery = '''
customEvents
| where name == "AllowlistSyncFailed" and tostring(customDimensions.errorType) == "Poisoned"
| project timestamp, registry = tostring(customDimensions.registry), message = tostring(customDimensions.message)
'''

resource poisonedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-poisoned-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR allowlist sync message poisoned'
    description: 'A registry failed on every delivery of its queue message and the message went to the poison queue (AllowlistSyncFailed, errorType Poisoned). The registry keeps its previous rules and is tried again at the next scheduled run. The cause is in the sync failed alert of the same registry (errorType and message of the last delivery).'
    // As urgent as a failure: a poisoned registry stays unsynced for a whole schedule period.
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    // Same cadence as the failure alert: the two arrive together for one poisoned registry.
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: poisonedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}

output actionGroupId string = actionGroup.id

// A real ACR Tasks agent refused by a registry's firewall (the canary). Only `refused`: a run that
// failed for another reason (quota, platform) or could not be judged is not the allowlist's fault
// and shows in the workbook instead. The diagnosis travels in the dimensions: the alert payload
// names the registry, the refused IP and the advice (add region X, sync, support-case evidence).
var canaryRefusedQuery = '''
customEvents
| where name == "AllowlistCanaryCompleted" and tostring(customDimensions.verdict) == "refused"
| project timestamp, registry = tostring(customDimensions.registry), refusedIp = tostring(customDimensions.refusedIp), containingTags = tostring(customDimensions.containingTags), runId = tostring(customDimensions.runId), advice = tostring(customDimensions.advice)
'''

resource canaryRefusedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-acrsync-canary-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'ACR Tasks canary refused by the registry firewall'
    description: 'An ACR Tasks agent was refused by a registry firewall (AllowlistCanaryCompleted, verdict refused): builds and tasks from that region fail now. The dimensions carry the refused IP and the diagnosis (advice): add the region it names, run a sync, wait for new rules to take effect, or open a support case with the run ID and time it gives.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: canaryRefusedQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'registry', operator: 'Include', values: ['*'] }
            { name: 'refusedIp', operator: 'Include', values: ['*'] }
            { name: 'advice', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}
