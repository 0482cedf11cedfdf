// The function app and what it needs in its own resource group: a user-assigned identity,
// storage reachable only with Entra ID, Log Analytics + Application Insights reachable only with
// Entra ID, and the Flex Consumption plan. No secret is created, stored or passed anywhere.

param location string
param tags object
param resourceToken string
@description('Settings of src/config/settings.ts, computed in main.bicep.')
param syncAppSettings object
param ledgerContainer string
param operatorPrincipalId string
param operatorCanWriteLedger bool

// Built-in role definition IDs (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Flex Consumption pulls the app package from this container at start-up.
var deploymentContainer = 'app-package'

// ---- identity ----------------------------------------------------------------------------------

// User-assigned rather than system-assigned: it exists before the app, so its role assignments
// (storage, App Insights, every registry) are in place when the app first starts, and it
// survives re-creating the app without re-granting anything.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-acrsync-${resourceToken}'
  location: location
  tags: tags
}

// ---- storage -----------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // Storage names: 3-24 lowercase letters and digits; 'stacrsync' + 13 = 22.
  name: 'stacrsync${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    // No account keys: the Functions host, the deployment and the ledger all authenticate with
    // the managed identity, so a leaked connection string cannot exist.
    allowSharedKeyAccess: false
    // The portal's storage browser then uses Entra ID too (it would ask for keys otherwise).
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Flex Consumption without VNet integration reaches storage over its public endpoint;
    // every request still needs an Entra ID token with a data role.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      // The ledger says which rules this service owns: a deleted or overwritten ledger can be
      // recovered for a week instead of making the service forget (and never remove) its rules.
      deleteRetentionPolicy: { enabled: true, days: 7 }
      containerDeleteRetentionPolicy: { enabled: true, days: 7 }
    }

    resource packageContainer 'containers' = {
      name: deploymentContainer
      properties: { publicAccess: 'None' }
    }

    resource ledger 'containers' = {
      name: ledgerContainer
      properties: { publicAccess: 'None' }
    }
  }

  // Fan-out run markers (`runs/<runId>/<registry>.done` in the ledger container, one per registry and
  // run, and `runs/<runId>/source.json`, one per run; src/fanout/tags-store.ts) only matter while a
  // run's messages can still be redelivered, a few minutes: this rule deletes them after 2 days
  // instead of letting a thousand a day pile up (with the 7-day soft delete above). Nothing else
  // lives under runs/.
  resource lifecycle 'managementPolicies' = {
    name: 'default'
    properties: {
      policy: {
        rules: [
          {
            name: 'fanout-run-markers'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: {
                blobTypes: ['blockBlob']
                prefixMatch: ['${ledgerContainer}/runs/']
              }
              actions: {
                baseBlob: {
                  delete: { daysAfterModificationGreaterThan: 2 }
                }
              }
            }
          }
        ]
      }
    }
  }

  // Fan-out (SYNC_FANOUT=true): one message per registry, and the queue the host moves a message
  // to after host.json's maxDequeueCount failed deliveries. Names fixed in src/fanout/message.ts.
  // The trigger and the sender use AzureWebJobsStorage__queueServiceUri with the identity, which
  // holds Storage Queue Data Contributor below (read, process, send, poison).
  resource queueService 'queueServices' = {
    name: 'default'

    resource syncQueue 'queues' = {
      name: 'allowlist-sync'
    }

    resource poisonQueue 'queues' = {
      name: 'allowlist-sync-poison'
    }
  }
}

// Blob Data Owner (not Contributor): the Functions host manages blob leases and its own
// containers (timer schedule monitor, host keys) and Flex reads the deployment package.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    // Set explicitly so ARM does not look the new identity up in Entra ID, where it may not
    // have replicated yet (PrincipalNotFound on the first deployment).
    principalType: 'ServicePrincipal'
  }
}

// Queue and table: the Functions host uses queues internally and writes diagnostic events to a
// table when AzureWebJobsStorage has a table endpoint.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Optional read access for an operator to the ledger and audit trail (read-only on purpose:
// editing a ledger by hand changes which rules the service believes it owns).
resource operatorBlobReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(storage.id, operatorPrincipalId, roles.storageBlobDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: operatorPrincipalId
  }
}

// Optional write access for the operator to the ledger container only (not the app package or the
// host's containers): CLI runs with --state blob take the registry's lock lease and write the ledger,
// audit entries and freezes there, sharing ownership with the function app.
resource operatorLedgerWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId) && operatorCanWriteLedger) {
  name: guid(storage::blobService::ledger.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: storage::blobService::ledger
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: operatorPrincipalId
  }
}

// ---- monitoring --------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-acrsync-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

// Entra ID ingestion (local auth disabled) only where Microsoft documents it: its prerequisites
// say "be in the public cloud". Elsewhere the instrumentation key writes, as it always has; the
// audience of each cloud is still carried in the connection string (AADAudience) for the day it
// is supported there. environment().name: AzureCloud, AzureUSGovernment, AzureChinaCloud.
var entraIngestion = environment().name == 'AzureCloud'
var monitorAudiences = {
  AzureCloud: 'https://monitor.azure.com'
  AzureUSGovernment: 'https://monitor.azure.us'
  AzureChinaCloud: 'https://monitor.azure.cn'
}
var monitorAudience = contains(monitorAudiences, environment().name) ? monitorAudiences[environment().name] : monitorAudiences.AzureCloud

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-acrsync-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    // Workspace-based: classic (standalone) Application Insights is retired.
    WorkspaceResourceId: logAnalytics.id
    // Public cloud: ingestion only with an Entra ID token of a principal holding Monitoring
    // Metrics Publisher, so the instrumentation key alone can no longer write (or forge) telemetry.
    DisableLocalAuth: entraIngestion
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- the function app --------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-acrsync-${resourceToken}'
  location: location
  tags: tags
  // Flex Consumption: pay per execution, identity-based deployment storage, Linux only.
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Required for Linux plans.
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-acrsync-${resourceToken}'
  location: location
  // azd finds the app to deploy `services.sync` to by this tag.
  tags: union(tags, { 'azd-service-name': 'sync' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          // The platform reads the package with the app's identity: no storage connection string.
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        // One daily timer run and occasional dry-run calls need one instance; 40 is the lowest
        // maximum every Flex region accepts. Concurrent runs on a registry are serialised by
        // the ledger lock, not by instance count.
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      // Flex takes the runtime from here; FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION
      // must NOT be app settings on this plan (the deployment fails if they are).
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
  dependsOn: [
    // The host reads its storage and the package as soon as the app exists.
    blobOwner
  ]

  resource appSettings 'config' = {
    name: 'appsettings'
    properties: union(syncAppSettings, {
      // Identity-based host storage: the service URIs plus the credential instead of a
      // connection string. __clientId picks the user-assigned identity.
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.properties.clientId
      // DefaultAzureCredential/ManagedIdentityCredential in our code pick this identity for ARM,
      // the ledger and telemetry ingestion.
      AZURE_CLIENT_ID: identity.properties.clientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: '${appInsights.properties.ConnectionString};AADAudience=${monitorAudience}/.default'
      // Makes the host's telemetry and ours (src/app/runtime.ts reads it too) authenticate with the
      // identity; required where local authentication is disabled, empty (key only) elsewhere.
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: entraIngestion ? 'ClientId=${identity.properties.clientId};Authorization=AAD' : ''
    })
  }
}

output functionAppName string = functionApp.name
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output appInsightsId string = appInsights.id
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output storageAccountName string = storage.name
