// Grants the app's identity one custom role on ONE registry: the firewall role (every synced
// registry) or the canary's run role (canary registries only). Deployed by main.bicep at the
// registry's resource group (any subscription of the tenant) so the assignment is scoped to the
// registry itself: the identity gets that role's actions on this registry and nothing else.

param registryName string
param principalId string
@description('Name (GUID) of the custom role definition created in main.bicep.')
param roleDefinitionGuid string

// `existing`: this template never creates or changes a registry; deployment fails early with
// ResourceNotFound if a configured ID is wrong, before the app ever runs.
resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource firewallRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roleDefinitionGuid)
  scope: registry
  properties: {
    // Custom roles are tenant-wide objects; this resolves the ID in the registry's subscription,
    // which must be among the role's assignable scopes (main.bicep lists it).
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    // The identity was just created: skip the Entra ID lookup that can fail on replication lag.
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentId string = firewallRole.id
