// An Azure Monitor workbook over the service's telemetry: rules used vs limit per registry over
// time, the last runs with their changes, failures, guard trips and drift. The content lives in
// workbook.json (edit it in the portal, then paste the Gallery Template JSON back there).

param location string
param tags object
param appInsightsId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook resource names must be GUIDs; stable so redeployments update it in place.
  name: guid(appInsightsId, 'acr-allowlist-sync-workbook')
  location: location
  tags: tags
  // 'shared': visible to everyone with read access to the resource group, not only the deployer.
  kind: 'shared'
  properties: {
    displayName: 'ACR allowlist sync'
    category: 'workbook'
    // Links the workbook to the Application Insights resource (it shows under its Workbooks).
    sourceId: appInsightsId
    // The JSON names its data source with a placeholder so the file stays deployment-neutral.
    serializedData: replace(loadTextContent('workbook.json'), '__APP_INSIGHTS_ID__', appInsightsId)
  }
}

output workbookId string = workbook.id
