using HostVM.Host.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace HostVM.Host.Api;

/// <summary>Maps routes, each with its <see cref="ApiEndpoint"/> (access, action name, summary), and keeps the list.</summary>
public sealed class ApiRoutes(IEndpointRouteBuilder app)
{
    private readonly List<ApiEndpoint> _endpoints = [];

    public IReadOnlyList<ApiEndpoint> Endpoints => _endpoints;

    public RouteHandlerBuilder Map(string method, string pattern, Access access, string action, string summary, Delegate handler, bool auditAlways = false)
    {
        var endpoint = new ApiEndpoint(method, pattern, access, action, summary, auditAlways);
        _endpoints.Add(endpoint);
        return app.MapMethods(pattern, [method], handler).WithMetadata(endpoint).WithName(action).WithSummary(summary);
    }

    /// <summary>A route mapped elsewhere (the OpenAPI document), put under the same rules.</summary>
    public void Add(IEndpointConventionBuilder builder, string method, string pattern, Access access, string action, string summary)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var endpoint = new ApiEndpoint(method, pattern, access, action, summary);
        _endpoints.Add(endpoint);
        builder.WithMetadata(endpoint);
    }

    public RouteHandlerBuilder Get(string pattern, Access access, string action, string summary, Delegate handler) => Map("GET", pattern, access, action, summary, handler);

    public RouteHandlerBuilder Post(string pattern, Access access, string action, string summary, Delegate handler) => Map("POST", pattern, access, action, summary, handler);

    public RouteHandlerBuilder Patch(string pattern, Access access, string action, string summary, Delegate handler) => Map("PATCH", pattern, access, action, summary, handler);

    public RouteHandlerBuilder Put(string pattern, Access access, string action, string summary, Delegate handler) => Map("PUT", pattern, access, action, summary, handler);

    public RouteHandlerBuilder Delete(string pattern, Access access, string action, string summary, Delegate handler) => Map("DELETE", pattern, access, action, summary, handler);

    /// <summary>Refuses to serve a route that came without an <see cref="ApiEndpoint"/>: it would have no access rule.</summary>
    public static void RequireAccessOnEveryRoute(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        foreach (var endpoint in app.DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>())
        {
            bool fallback = endpoint.Order == int.MaxValue; // MapFallback's: unknown paths answer 404 to anyone
            if (endpoint.Metadata.GetMetadata<ApiEndpoint>() is null && !fallback)
            {
                throw new InvalidOperationException($"Route {endpoint.RoutePattern.RawText} has no access rule (map it through ApiRoutes).");
            }
        }
    }
}
