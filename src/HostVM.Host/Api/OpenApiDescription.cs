using System.Text.Json;
using System.Text.Json.Nodes;
using HostVM.Host.Security;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace HostVM.Host.Api;

/// <summary>
/// The OpenAPI document the daemon serves at /openapi/v1.json, generated from the mapped routes: each
/// operation carries its access level (x-hostvm-access), the Bearer scheme, and the refusals access control adds.
/// </summary>
public static class OpenApiDescription
{
    public const string DocumentName = "v1";
    public const string Route = "/openapi/{documentName}.json";
    public const string AccessExtension = "x-hostvm-access";

    public static void Configure(OpenApiOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "HostVM host API",
                Version = "v1",
                Description = "The hostvm daemon's REST API. Every route but this document (and /metrics when metrics_public is set) needs "
                    + "`Authorization: Bearer hvt_...`; see docs/host-api.md and docs/operations.md.",
            };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "An API token (hostvm token create).",
            };
            return Task.CompletedTask;
        });
        options.AddOperationTransformer((operation, context, _) =>
        {
            var endpoint = context.Description.ActionDescriptor.EndpointMetadata.OfType<ApiEndpoint>().FirstOrDefault();
            if (endpoint is null)
            {
                return Task.CompletedTask;
            }

            operation.OperationId = endpoint.Action;
            operation.Summary = endpoint.Summary;
            operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
            operation.Extensions[AccessExtension] = new JsonNodeExtension(JsonValue.Create(Name(endpoint.Access)));
            operation.Responses ??= [];
            if (endpoint.Access != Access.Anyone)
            {
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", context.Document)] = [] }];
                operation.Responses.TryAdd("401", new OpenApiResponse { Description = "No token, or an invalid, expired or revoked one (problem+json)." });
                operation.Responses.TryAdd("429", new OpenApiResponse { Description = "Too many failed authentications from this address; see Retry-After." });
            }

            if (endpoint.Access is not (Access.Anyone or Access.Read))
            {
                operation.Responses.TryAdd("403", new OpenApiResponse { Description = "The token's role may not do this (problem+json)." });
            }

            if (endpoint.Pattern.Contains('{', StringComparison.Ordinal))
            {
                operation.Responses.TryAdd("404", new OpenApiResponse { Description = "No such object, or one of another project (problem+json)." });
            }

            return Task.CompletedTask;
        });
    }

    /// <summary>The access level as documents and tests spell it: anyone, read, operate, admin, host-admin.</summary>
    public static string Name(Access access) => access switch
    {
        Access.HostAdmin => "host-admin",
        _ => JsonNamingPolicy.KebabCaseLower.ConvertName(access.ToString()),
    };
}
