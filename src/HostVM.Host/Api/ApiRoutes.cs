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

    public void Map(string method, string pattern, Access access, string action, string summary, Delegate handler)
    {
        var endpoint = new ApiEndpoint(method, pattern, access, action, summary);
        _endpoints.Add(endpoint);
        app.MapMethods(pattern, [method], handler).WithMetadata(endpoint).WithName(action).WithSummary(summary);
    }

    public void Get(string pattern, Access access, string action, string summary, Delegate handler) => Map("GET", pattern, access, action, summary, handler);

    public void Post(string pattern, Access access, string action, string summary, Delegate handler) => Map("POST", pattern, access, action, summary, handler);

    public void Patch(string pattern, Access access, string action, string summary, Delegate handler) => Map("PATCH", pattern, access, action, summary, handler);

    public void Delete(string pattern, Access access, string action, string summary, Delegate handler) => Map("DELETE", pattern, access, action, summary, handler);
}
