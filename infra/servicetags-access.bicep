// Grants the app's identity the custom service-tags role on ONE subscription: the one the
// Service Tag Discovery API is read through (SERVICE_TAGS_API_SUBSCRIPTION, default the first
// target registry's). Deployed by main.bicep at that subscription's scope.
targetScope = 'subscription'

param principalId string
@description('Name (GUID) of the custom role definition created in main.bicep.')
param roleDefinitionGuid string

resource serviceTagsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    // The identity was just created: skip the Entra ID lookup that can fail on replication lag.
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentId string = serviceTagsReader.id
