using System.Net;
using System.Text;

namespace HostVM.Cli.Tests;

/// <summary>
/// Stands in for the daemon's HTTP transport: records every request (method, path and query, body) and
/// answers with what the test set for that method and path, or 404 problem+json.
/// </summary>
public sealed class FakeDaemon : HttpMessageHandler
{
    private readonly Dictionary<string, (HttpStatusCode Status, string Body, string ContentType)> _answers = [];

    public List<RecordedRequest> Requests { get; } = [];

    public FakeDaemon Answer(string method, string pathAndQuery, HttpStatusCode status, string body, string contentType = "application/json")
    {
        _answers[$"{method} {pathAndQuery}"] = (status, body, contentType);
        return this;
    }

    public FakeDaemon Problem(string method, string pathAndQuery, HttpStatusCode status, string problemJson) =>
        Answer(method, pathAndQuery, status, problemJson, "application/problem+json");

    public RecordedRequest Single(string method) => Assert.Single(Requests, r => r.Method == method);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        byte[] body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        string path = request.RequestUri!.PathAndQuery;
        Requests.Add(new RecordedRequest(request.Method.Method, path, body, request.Content?.Headers.ContentType?.ToString(), request.Headers.Authorization?.ToString()));
        var (status, answer, contentType) = _answers.TryGetValue($"{request.Method.Method} {path}", out var a)
            ? a
            : (HttpStatusCode.NotFound, $$"""{"status": 404, "title": "Not found", "detail": "the fake daemon has no answer for {{request.Method.Method}} {{path}}"}""", "application/problem+json");
        return new HttpResponseMessage(status)
        {
            Content = new StringContent(answer, Encoding.UTF8, contentType),
        };
    }
}
