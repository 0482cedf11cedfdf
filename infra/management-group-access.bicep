// Discovery on a MANAGEMENT GROUP (TARGET_DISCOVERY_SCOPES has
// /providers/Microsoft.Management/managementGroups/<id>): Reader at the group, so Azure Resource
// Graph returns the tagged registries of every subscription under it (its results are filtered by
// the caller's RBAC), and a registry-firewall role at the group, so the app can sync registries
// that are tagged after deployment without a new role assignment per registry.
//
// A deployment of its own, not a module of main.bicep: main.bicep is deployed at subscription scope,
// and a subscription-scope deployment can reach resource groups, subscriptions and the tenant, not a
// management group. Run it once per group after `azd provision`, as someone who may create roles
// and assign them at the group (Owner, or User Access Administrator, at the group):
//
//   az deployment mg create --management-group-id <group> --location <region> \
//     --template-file infra/management-group-access.bicep \
//     --parameters principalId=<APP_IDENTITY_PRINCIPAL_ID> environmentName=<azd environment name>
//
// (`azd env get-values` lists APP_IDENTITY_PRINCIPAL_ID and DISCOVERY_MANAGEMENT_GROUPS.)
//
// The trade-off of subscription scope, wider (README "Discovery"): registries/write at the group lets
// the identity change ANY registry in every subscription under it, today's and future ones, tagged
// or not; the code only writes to tagged ones, RBAC cannot know that.
targetScope = 'managementGroup'

@description('Object ID of the function app\'s identity (azd output APP_IDENTITY_PRINCIPAL_ID).')
param principalId string

@minLength(1)
@description('The azd environment name, as given to main.bicep: part of the role\'s name.')
param environmentName string

@description('true when the app runs with syncIncludeReplicas=true: the role then also reads replications (as main.bicep\'s).')
param includeReplicas bool = false

@description('Resource ID of an existing custom role with the registry actions whose assignable scopes include this group (platform teams that pre-create roles). Empty: this template creates one.')
param registryRoleDefinitionId string = ''

// Built-in Reader (the same ID in every tenant); built-in roles are tenant-level definitions.
var readerRoleGuid = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

// The same actions as main.bicep's role (test/infra/fanout-infra.test.ts keeps them equal).
var documentedRegistryActions = [
  'Microsoft.ContainerRegistry/registries/read'
  'Microsoft.ContainerRegistry/registries/write'
  'Microsoft.ContainerRegistry/registries/operationStatuses/read'
  'Microsoft.ContainerRegistry/registries/listUsages/read'
]
var replicaActions = includeReplicas ? [
  'Microsoft.ContainerRegistry/registries/replications/read'
] : []

var createRegistryRole = empty(registryRoleDefinitionId)

// A role of the group's own rather than main.bicep's role with the group added to its assignable
// scopes: a custom role may list only one management group there, and main.bicep's role is created
// at subscription scope by a deployer who may have no rights at the group. No dataActions: a role
// with dataActions cannot be assigned at a management group.
resource registryRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (createRegistryRole) {
  name: guid(managementGroup().id, environmentName, 'acr-allowlist-sync-registry-firewall')
  properties: {
    // Role names are unique in the tenant: the group's name keeps two groups' roles apart.
    roleName: 'ACR allowlist sync - registry firewall (${environmentName}, ${managementGroup().name})'
    description: 'Read a container registry, replace its IP rules, poll the update and read the IP rule limit. Used by acr-allowlist-sync discovery on this management group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(documentedRegistryActions, replicaActions)
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      managementGroup().id
    ]
  }
}

var registryRoleId = createRegistryRole ? registryRole.id : registryRoleDefinitionId

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, readerRoleGuid)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', readerRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource firewallRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, 'acr-allowlist-sync-registry-firewall')
  properties: {
    roleDefinitionId: registryRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output registryRoleDefinitionId string = registryRoleId
