using System.CommandLine;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm token ...`: the API tokens (hvt_...) that let callers in over TCP, with a role and optionally one project.</summary>
public static class TokenCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("token", "Manage API tokens: what lets a caller in over TCP, with a role (viewer, operator, admin) and optionally one project.")
    {
        CreateCommand(runner),
        runner.ListCommand(
            "List the tokens (never their secrets).",
            (c, t) => c.ListTokensAsync(t),
            "No tokens: make one with `hostvm token create --role admin|operator|viewer`.",
            ["ID", "ROLE", "PROJECT", "CREATED", "EXPIRES", "STATE", "DESCRIPTION"],
            token =>
            [
                Markup.Escape(token.Id),
                Markup.Escape(token.Role),
                Scope(token.Project),
                HumanOutput.Time(token.CreatedAt),
                token.ExpiresAt is null ? "never" : HumanOutput.Time(token.ExpiresAt),
                State(token, DateTimeOffset.Now),
                HumanOutput.Escape(token.Description),
            ]),
        RevokeCommand(runner),
    };

    /// <summary>revoked red, expired yellow, active green.</summary>
    public static string State(Token token, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(token);
        return token switch
        {
            { RevokedAt: { } at } => $"[red]revoked[/] {HumanOutput.Time(at)}",
            { ExpiresAt: { } at } when at <= now => "[yellow]expired[/]",
            _ => "[green]active[/]",
        };
    }

    /// <summary>A token's project, or that it reaches every project.</summary>
    private static string Scope(string? project) => project is null ? "(all)" : Markup.Escape(project);

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var role = new Option<string>("--role")
        {
            Description = "viewer reads; operator also manages VMs, images and networks; admin also manages tokens (and, of no project, projects and the host).",
            Required = true,
        };
        role.AcceptOnlyFromAmong("viewer", "operator", "admin");
        var project = new Option<string?>("--project") { Description = "The one project it reaches (default: every project; a project's admin makes tokens of its own project)." };
        var expires = new Option<string?>("--expires") { Description = "How long it lives: a whole number and a unit, s, m, h, d or w (90m, 12h, 30d, 1w); default: until revoked." };
        var description = new Option<string?>("--description") { Description = "A note shown in `token list`: whose it is, what for." };
        var command = new Command("create", "Make a token. It is printed once: keep it, it cannot be shown again.") { role, project, expires, description };
        runner.SetAction(command, async call =>
        {
            if (call.Get(expires) is { } lifetime)
            {
                OptionValues.Duration("--expires", lifetime); // refused here, with the option's name, rather than by the daemon
            }

            var request = new CreateTokenRequest { Role = call.Get(role), Project = call.Get(project), ExpiresIn = call.Get(expires)?.Trim(), Description = call.Get(description) };
            var created = await call.Client.CreateTokenAsync(request, call.CancellationToken).ConfigureAwait(false);
            return call.Print(created, PrintCreated);
        });
        return command;
    }

    private static void PrintCreated(IAnsiConsole screen, CreatedToken created)
    {
        var t = created.Details;
        string scope = t.Project is null ? "every project" : $"project [bold]{Markup.Escape(t.Project)}[/]";
        string until = t.ExpiresAt is null ? "until revoked" : $"until {HumanOutput.Time(t.ExpiresAt)}";
        screen.MarkupLine($"Created token [bold]{Markup.Escape(t.Id)}[/]: {Markup.Escape(t.Role)} of {scope}, valid {until}.");
        screen.WriteLine();
        screen.MarkupLine($"    [bold green]{Markup.Escape(created.Token)}[/]");
        screen.WriteLine();
        screen.MarkupLine("[yellow]Keep it now: it will not be shown again.[/] Give it to hostvm with --token or $HOSTVM_TOKEN (or `hostvm login`), or send it as Authorization: Bearer.");
    }

    private static Command RevokeCommand(DaemonCommandRunner runner)
    {
        var id = new Argument<string>("id") { Description = "The token's id (the ID column of `hostvm token list`), or the whole token (hvt_...)." };
        var command = new Command("revoke", "Revoke a token: it stops working at once, for good.") { id };
        runner.SetAction(command, async call =>
        {
            string tokenId = IdOf(call.Get(id));
            await call.Client.RevokeTokenAsync(tokenId, call.CancellationToken).ConfigureAwait(false);
            return call.Say($"Revoked token [bold]{Markup.Escape(tokenId)}[/].");
        });
        return command;
    }

    /// <summary>The id in a whole token (hvt_ID_SECRET), so that a leaked token can be revoked as it was found; else the text itself.</summary>
    public static string IdOf(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        const string Prefix = "hvt_";
        int split = text.StartsWith(Prefix, StringComparison.Ordinal) ? text.IndexOf('_', Prefix.Length) : -1;
        return split > Prefix.Length ? text[Prefix.Length..split] : text;
    }
}
