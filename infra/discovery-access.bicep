// Discovery (TARGET_DISCOVERY_TAG) on ONE subscription: Reader, so Azure Resource Graph returns
// the subscription's tagged registries (its results are filtered by the caller's RBAC), and the
// custom registry-firewall role at the subscription, so the app can sync registries that are
// tagged after deployment without a new role assignment per registry.
//
// The trade-off (README "Discovery"): registries/write at subscription scope lets the identity
// change ANY registry of the subscription, tagged or not; the code only writes to tagged ones.
targetScope = 'subscription'

param principalId string
@description('Name (GUID) of the custom role definition created in main.bicep; this subscription must be among its assignable scopes.')
param roleDefinitionGuid string

// Built-in Reader (the same ID in every tenant).
var readerRoleGuid = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, readerRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource firewallRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
