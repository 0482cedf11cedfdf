// acr-allowlist-sync: everything `azd up` creates.
//
// Subscription scope because the deployment creates its own resource group AND grants the app's
// identity a role on registries that may live in other resource groups or subscriptions.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; part of every resource name and of the custom role name.')
param environmentName string

@minLength(1)
@description('Region of the function app and its monitoring. Must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Registries to keep in sync: ARM resource IDs, comma-separated (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>). The app identity gets the custom registry role on each one. May be empty when targetDiscoveryTag is set.')
param targetRegistries string = ''

@description('Discovery tag key=value (e.g. acr-allowlist-sync=enabled). Empty: discovery off. When set, the app identity gets Reader and the custom registry role on each subscription of targetDiscoveryScopes.')
param targetDiscoveryTag string = ''
@description('Comma-separated /subscriptions/<id> (roles assigned by this template) or /providers/Microsoft.Management/managementGroups/<id> (roles assigned by a deployment of infra/management-group-access.bicep per group, see README). Empty with a tag: this subscription.')
param targetDiscoveryScopes string = ''
@description('true: the timer enqueues one message per registry and a queue-triggered function syncs each. Empty: on when discovery is on, off otherwise.')
@allowed(['', 'true', 'false'])
param syncFanout string = ''
param syncMaxPerSubscription string = ''

@description('Email address for alert notifications. Empty: the alerts still fire in the portal but notify nobody.')
param alertEmailAddress string = ''

@description('Alert when a registry uses more than this percentage of its IP rule limit.')
@minValue(1)
@maxValue(100)
param rulesUsedAlertPercent int = 90

@description('Resource ID (or GUID) of an existing custom role definition with the registry actions, for platform teams that pre-create roles: the template then creates no role and needs no roleDefinitions/write. Empty: the template creates the role (Owner or User Access Administrator needed).')
param registryRoleDefinitionId string = ''

@description('Optional object ID of a person or group who may read the ledger and audit blobs (Storage Blob Data Reader). Empty: nobody.')
param operatorPrincipalId string = ''
@description('true: let operatorPrincipalId also write the ledger container (Storage Blob Data Contributor on that container only), for CLI runs with --state blob: a forced apply, freeze, unfreeze, rollback, release.')
param operatorCanWriteLedger string = 'false'

// ---- app settings (strings, as App Service stores them). '' means "the code's default" (src/config/settings.ts). ----

@description('Cloud of the service-tags file: Public, AzureGovernment or China. Empty: derived from the cloud this is deployed to.')
@allowed(['', 'Public', 'AzureGovernment', 'China'])
param serviceTagsCloud string = ''
param serviceTagsUrl string = ''
param serviceTagsDetailsUrl string = ''
param serviceTagsLatestUrl string = ''
param serviceTagsTimeoutMs string = ''
param serviceTagsMaxBytes string = ''
param serviceTagsRetries string = ''
param serviceTagsMinAcrTags string = ''
@description('NCRONTAB (six fields, seconds first, UTC). Never empty: the timer trigger binds to %SYNC_SCHEDULE% and an empty value stops the function from loading.')
@minLength(11)
param syncSchedule string = '0 0 3 * * *'
param syncRegions string = ''
// Booleans are `bool` parameters: azd and ARM refuse anything that is not a boolean, and the app
// setting is written from the same value as the role's actions, as 'true' or 'false' (the code
// accepts exactly true/false in any letter case; test/azure/booleans.test.ts feeds it both).
@description('Also allow the tags of each registry\'s geo-replica locations. True also grants replications/read in the custom role.')
param syncIncludeReplicas bool = false
param syncPinnedRules string = ''
param syncHeadroom string = ''
param syncMinPrefixLength string = ''
param syncMaxExtraAddresses string = ''
param syncMaxExtraRatio string = ''
param syncMaxRemovalShare string = ''
@description('Write rules even while a registry\'s defaultAction is Allow (firewall off).')
param syncWriteWhenDefaultAllow bool = false
param syncOperationTimeoutMs string = ''
param syncLockWaitMs string = ''
@description('Time budget of a timer invocation in ms; keep it at least 30 s below host.json functionTimeout. Empty: 540000.')
param syncDeadlineMs string = ''
@description('Time budget of a GET /api/plan call in ms, at most 215000 (HTTP responses are cut at 230 s). Empty: 200000.')
param syncHttpDeadlineMs string = ''
@description('ARM endpoint. Empty: the default of the service-tags cloud.')
param armEndpoint string = ''
@description('api-version of the registry API. Empty: the SDK\'s (2025-11-01), with one retry on 2023-07-01 if ARM refuses it.')
param armApiVersion string = ''
@description('Subscription the Service Tag Discovery API is read through (SERVICE_TAGS_API_SUBSCRIPTION). Empty: the first target registry\'s. The identity gets Microsoft.Network/locations/serviceTags/read there, nothing more.')
param serviceTagsApiSubscription string = ''
@description('Blob container for ledgers, audit entries and locks; created by this template.')
param ledgerContainer string = 'acr-allowlist-sync'

// ---- the ACR Tasks canary (README: The canary). Only these registries get the canary role. ----

@description('Dedicated canary registries (recommended: one small Premium registry per region, firewall on): ARM resource IDs, comma-separated. Each is synced like a target and runs the ACR Tasks canary. Empty: no dedicated canary.')
param canaryRegistries string = ''
@description('Opt-in: target registries (IDs from targetRegistries, comma-separated) that run the canary on themselves. The app identity then gets the canary role there, and with it the power to push images.')
param canaryOnTargets string = ''
@description('NCRONTAB (six fields, seconds first) of the canary timer. Never empty: the timer function needs a schedule.')
@minLength(11)
param canarySchedule string = '0 30 */6 * * *'
param canaryPropagationDelayMs string = ''
param canaryDeadlineMs string = ''
param canaryPollIntervalMs string = ''

var tags = { 'azd-env-name': environmentName }
// Stable per environment, subscription and region: re-running `azd up` updates instead of duplicating.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))

// `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>` split on '/':
// index 2 = subscription, 4 = resource group, 8 = registry name.
// A trailing slash is cut, so `.../registries/name/` scopes the role and the alerts like `.../registries/name`.
var targetRegistryIds = map(
  filter(map(split(targetRegistries, ','), id => trim(id)), id => !empty(id)),
  id => endsWith(id, '/') ? substring(id, 0, length(id) - 1) : id
)
var canaryRegistryIds = filter(map(split(canaryRegistries, ','), id => trim(id)), id => !empty(id))
var canaryOnTargetIds = filter(map(split(canaryOnTargets, ','), id => trim(id)), id => !empty(id))
// Dedicated canary registries are kept in sync like targets: they get the firewall role too.
var syncedRegistryIds = union(targetRegistryIds, canaryRegistryIds)
// Where a task may run: the only registries that get the canary role.
var canaryRunnerIds = union(canaryRegistryIds, canaryOnTargetIds)

var discoveryOn = !empty(targetDiscoveryTag)
var discoveryScopeList = filter(map(split(targetDiscoveryScopes, ','), s => trim(s)), s => !empty(s))
// With a tag but no scope, the code would search every readable subscription; the template only
// grants roles here, so it pins the scope to this subscription unless told more.
var effectiveDiscoveryScopes = discoveryOn && empty(discoveryScopeList) ? subscription().id : join(discoveryScopeList, ',')
// `/subscriptions/<id>` scopes: index 2 of split('/') is the subscription ID.
var discoverySubscriptionIds = discoveryOn
  ? (empty(discoveryScopeList)
      ? [subscription().subscriptionId]
      : map(filter(discoveryScopeList, s => startsWith(toLower(s), '/subscriptions/')), s => split(s, '/')[2]))
  : []

// `/providers/Microsoft.Management/managementGroups/<id>` scopes: index 4 is the group's ID. Their
// roles cannot be assigned from this subscription-scope deployment: infra/management-group-access.bicep.
var discoveryManagementGroups = discoveryOn
  ? map(
      filter(discoveryScopeList, s => startsWith(toLower(s), '/providers/microsoft.management/managementgroups/')),
      s => split(s, '/')[4]
    )
  : []

// environment().name is AzureCloud, AzureChinaCloud or AzureUSGovernment: the file of the same cloud.
var cloudByEnvironment = {
  AzureCloud: 'Public'
  AzureChinaCloud: 'China'
  AzureUSGovernment: 'AzureGovernment'
}
var cloudOfThisEnvironment = contains(cloudByEnvironment, environment().name) ? cloudByEnvironment[environment().name] : 'Public'
var effectiveServiceTagsCloud = !empty(serviceTagsCloud) ? serviceTagsCloud : cloudOfThisEnvironment

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    ledgerContainer: ledgerContainer
    operatorPrincipalId: operatorPrincipalId
    // A string like the other azd-fed flags: azd substitutes text.
    operatorCanWriteLedger: operatorCanWriteLedger == 'true'
    syncAppSettings: {
      TARGET_REGISTRIES: join(targetRegistryIds, ',')
      TARGET_DISCOVERY_TAG: targetDiscoveryTag
      TARGET_DISCOVERY_SCOPES: effectiveDiscoveryScopes
      // Discovery can find hundreds of registries: fan out unless told otherwise.
      SYNC_FANOUT: !empty(syncFanout) ? syncFanout : (discoveryOn ? 'true' : '')
      SYNC_MAX_PER_SUBSCRIPTION: syncMaxPerSubscription
      SERVICE_TAGS_CLOUD: effectiveServiceTagsCloud
      SERVICE_TAGS_URL: serviceTagsUrl
      SERVICE_TAGS_DETAILS_URL: serviceTagsDetailsUrl
      SERVICE_TAGS_LATEST_URL: serviceTagsLatestUrl
      SERVICE_TAGS_TIMEOUT_MS: serviceTagsTimeoutMs
      SERVICE_TAGS_MAX_BYTES: serviceTagsMaxBytes
      SERVICE_TAGS_RETRIES: serviceTagsRetries
      SERVICE_TAGS_MIN_ACR_TAGS: serviceTagsMinAcrTags
      SYNC_SCHEDULE: syncSchedule
      SYNC_REGIONS: syncRegions
      SYNC_INCLUDE_REPLICAS: syncIncludeReplicas ? 'true' : 'false'
      SYNC_PINNED_RULES: syncPinnedRules
      SYNC_HEADROOM: syncHeadroom
      SYNC_MIN_PREFIX_LENGTH: syncMinPrefixLength
      SYNC_MAX_EXTRA_ADDRESSES: syncMaxExtraAddresses
      SYNC_MAX_EXTRA_RATIO: syncMaxExtraRatio
      SYNC_MAX_REMOVAL_SHARE: syncMaxRemovalShare
      SYNC_WRITE_WHEN_DEFAULT_ALLOW: syncWriteWhenDefaultAllow ? 'true' : 'false'
      SYNC_OPERATION_TIMEOUT_MS: syncOperationTimeoutMs
      SYNC_LOCK_WAIT_MS: syncLockWaitMs
      SYNC_DEADLINE_MS: syncDeadlineMs
      SYNC_HTTP_DEADLINE_MS: syncHttpDeadlineMs
      ARM_ENDPOINT: armEndpoint
      ARM_API_VERSION: armApiVersion
      LEDGER_CONTAINER: ledgerContainer
      CANARY_REGISTRIES: join(canaryRegistryIds, ',')
      CANARY_ON_TARGETS: join(canaryOnTargetIds, ',')
      CANARY_SCHEDULE: canarySchedule
      CANARY_PROPAGATION_DELAY_MS: canaryPropagationDelayMs
      CANARY_DEADLINE_MS: canaryDeadlineMs
      CANARY_POLL_INTERVAL_MS: canaryPollIntervalMs
      SERVICE_TAGS_API_SUBSCRIPTION: serviceTagsApiSubscription
    }
  }
}

module alerts 'alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    appInsightsId: app.outputs.appInsightsId
    alertEmailAddress: alertEmailAddress
    rulesUsedAlertPercent: rulesUsedAlertPercent
    targetRegistryIds: syncedRegistryIds
  }
}

module workbook 'workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: app.outputs.appInsightsId
  }
}

// Least privilege on the registries: no built-in role is narrow enough (Contributor could delete
// the registry, AcrPush/AcrPull are data-plane roles that cannot edit network rules). These four
// actions are exactly what the service calls: GET the registry, PATCH its networkRuleSet, poll the
// long-running PATCH (operationStatuses), and read the IP rule limit (listUsages).
var documentedRegistryActions = [
  'Microsoft.ContainerRegistry/registries/read'
  'Microsoft.ContainerRegistry/registries/write'
  'Microsoft.ContainerRegistry/registries/operationStatuses/read'
  'Microsoft.ContainerRegistry/registries/listUsages/read'
]

// Geo-replica locations are read (replications list) only when SYNC_INCLUDE_REPLICAS is true, so
// only then does the role need this fifth action.
var replicaActions = syncIncludeReplicas ? [
  'Microsoft.ContainerRegistry/registries/replications/read'
] : []

var registryActions = concat(documentedRegistryActions, replicaActions)

// A custom role may only be assigned inside its assignable scopes: the subscriptions that hold
// target registries. This subscription is always listed because the definition is created here.
// union() removes duplicates. The role is only ever *assigned* on the registries themselves.
// With discovery on, the role is also assigned at each discovery subscription (discovery-access.bicep).
var registrySubscriptionScopes = union(
  [subscription().id],
  map(syncedRegistryIds, id => '/subscriptions/${split(id, '/')[2]}'),
  map(discoverySubscriptionIds, id => '/subscriptions/${id}')
)

// Creating a role definition needs Microsoft.Authorization/roleDefinitions/write (Owner or User
// Access Administrator; Contributor and RBAC Administrator lack it). With an existing role passed
// in, nothing is created and only role assignments are made.
var createRegistryRole = empty(registryRoleDefinitionId)
// Role definition names are GUIDs unique per tenant: one per subscription and environment.
var createdRoleGuid = guid(subscription().id, environmentName, 'acr-allowlist-sync-registry-firewall')
var registryRoleGuid = createRegistryRole ? createdRoleGuid : last(split(registryRoleDefinitionId, '/'))

resource registryRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (createRegistryRole) {
  name: createdRoleGuid
  properties: {
    // Role names must be unique in the tenant: the same environment name in two subscriptions
    // would otherwise collide (RoleDefinitionWithSameNameExists).
    roleName: 'ACR allowlist sync - registry firewall (${environmentName}, ${subscription().subscriptionId})'
    description: 'Read a container registry, replace its IP rules, poll the update and read the IP rule limit. Used by acr-allowlist-sync.'
    type: 'CustomRole'
    permissions: [
      {
        actions: registryActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: registrySubscriptionScopes
  }
}

// One deployment per registry, in the registry's own resource group (which may be in another
// subscription): the role is assigned on the registry resource, not on its group.
module registryAccess 'registry-access.bicep' = [
  for (id, i) in syncedRegistryIds: {
    name: 'registry-access-${i}-${take(uniqueString(id), 6)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      registryName: split(id, '/')[8]
      principalId: app.outputs.identityPrincipalId
      roleDefinitionGuid: registryRoleGuid
    }
    // The GUID is known before the role exists, so make the order explicit: assigning a role
    // that is not created yet fails with RoleDefinitionDoesNotExist.
    dependsOn: [
      registryRole
    ]
  }
]

// The Service Tag Discovery API (azure-facts §10) needs one action on one subscription. Reader
// would grant it, and read access to everything else in the subscription with it: a custom role
// with exactly this action instead.
var apiSubscriptionId = !empty(serviceTagsApiSubscription) ? serviceTagsApiSubscription : split(targetRegistryIds[0], '/')[2]

resource serviceTagsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'acr-allowlist-sync-service-tags-reader')
  properties: {
    // Unique in the tenant, as the registry role's name (RoleDefinitionWithSameNameExists otherwise).
    roleName: 'ACR allowlist sync - service tags reader (${environmentName}, ${subscription().subscriptionId})'
    description: 'Read the Service Tag Discovery API (Microsoft.Network/locations/serviceTags). Used by acr-allowlist-sync.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Network/locations/serviceTags/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: union([subscription().id], ['/subscriptions/${apiSubscriptionId}'])
  }
}

module serviceTagsAccess 'servicetags-access.bicep' = {
  name: 'servicetags-access-${take(uniqueString(apiSubscriptionId), 6)}'
  scope: subscription(apiSubscriptionId)
  params: {
    principalId: app.outputs.identityPrincipalId
    roleDefinitionGuid: serviceTagsRole.name
  }
  dependsOn: [
    serviceTagsRole
  ]
}

// Discovery: Reader (for Resource Graph) and the registry role on each discovery subscription.
// Management-group scopes are outside what a subscription deployment can grant: deploy
// infra/management-group-access.bicep once per group (DISCOVERY_MANAGEMENT_GROUPS below; README).
module discoveryAccess 'discovery-access.bicep' = [
  for (subscriptionId, i) in discoverySubscriptionIds: {
    name: 'discovery-access-${i}-${take(uniqueString(subscriptionId), 6)}'
    scope: subscription(subscriptionId)
    params: {
      principalId: app.outputs.identityPrincipalId
      roleDefinitionGuid: registryRoleGuid
    }
    dependsOn: [
      registryRole
    ]
  }
]

// The canary's run permissions, in a role of their own assigned only where a canary runs: a task
// run can push images, so the firewall role (every target) must never carry them.
// runs/cancel/action is left out: the canary never cancels (its run has a 300 s timeout).
var canaryActions = [
  'Microsoft.ContainerRegistry/registries/scheduleRun/action'
  'Microsoft.ContainerRegistry/registries/runs/read'
  'Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action'
]

var canarySubscriptionScopes = union([subscription().id], map(canaryRunnerIds, id => '/subscriptions/${split(id, '/')[2]}'))

resource canaryRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(canaryRunnerIds)) {
  name: guid(subscription().id, environmentName, 'acr-allowlist-sync-canary-runner')
  properties: {
    // Unique in the tenant, as the registry role's name (RoleDefinitionWithSameNameExists otherwise).
    roleName: 'ACR allowlist sync - canary runner (${environmentName}, ${subscription().subscriptionId})'
    description: 'Schedule an ACR Tasks quick run, read it and its log. Used by the acr-allowlist-sync canary, only on canary registries.'
    type: 'CustomRole'
    permissions: [
      {
        actions: canaryActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: canarySubscriptionScopes
  }
}

module canaryAccess 'registry-access.bicep' = [
  for (id, i) in canaryRunnerIds: {
    name: 'canary-access-${i}-${take(uniqueString(id), 6)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      registryName: split(id, '/')[8]
      principalId: app.outputs.identityPrincipalId
      roleDefinitionGuid: guid(subscription().id, environmentName, 'acr-allowlist-sync-canary-runner')
    }
    dependsOn: [
      canaryRole
    ]
  }
]

// azd stores outputs in the environment (.azure/<env>/.env); the names below are what it reads.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_CLIENT_ID string = app.outputs.identityClientId
output APPLICATIONINSIGHTS_CONNECTION_STRING string = app.outputs.appInsightsConnectionString
output REGISTRY_ROLE_DEFINITION_ID string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', registryRoleGuid)
output WORKBOOK_ID string = workbook.outputs.workbookId
// For `az deployment mg create ... infra/management-group-access.bicep` (README "Discovery").
output APP_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output DISCOVERY_MANAGEMENT_GROUPS string = join(discoveryManagementGroups, ',')
