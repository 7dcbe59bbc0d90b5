package com.example.jobs;

import java.util.Map;

import org.springframework.beans.factory.support.RootBeanDefinition;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.http.client.SimpleClientHttpRequestFactory;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.scheduling.annotation.ScheduledAnnotationBeanPostProcessor;
import org.springframework.stereotype.Component;
import org.springframework.web.client.HttpStatusCodeException;
import org.springframework.web.client.RestClientException;
import org.springframework.web.client.RestTemplate;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Runs a scheduled job only on the pod that raft-elector names as leader: the check used with
 * the old leader-elector sidecar, unchanged. {@code GET http://localhost:4040/} answers
 * {@code {"name":"<leader pod>"}}; this pod leads when that is its own name (HOSTNAME is the
 * pod name in Kubernetes).
 *
 * <p>Spring Framework 4.3 or later (RestTemplate, {@code @Scheduled}; Spring Boot 1.5 to 3.x)
 * with Jackson. In an application, keep the component and enable scheduling with
 * {@code @EnableScheduling} on a configuration class. RAFT_ELECTOR_URL overrides the sidecar's
 * address. Run on its own (tests/it/examples.rs compiles and runs it against live peers):
 *
 * <pre>
 *   java com.example.jobs.LeaderOnlyJob            # a Spring context: the job every 30 s if this pod leads
 *   java com.example.jobs.LeaderOnlyJob --check    # exit 0 if this pod leads, 1 otherwise
 *   java com.example.jobs.LeaderOnlyJob --watch    # push: a line at once and on every change of leader
 *   java com.example.jobs.LeaderOnlyJob --claim JOB SLOT   # exactly once per slot (SlotClaims)
 * </pre>
 *
 * <p>{@code --watch} uses raft-elector's blocking query {@code GET /v1/leader?wait=60s&term=N&name=X}:
 * the sidecar answers as soon as the leader or the term differs from what the caller saw.
 */
@Component
public class LeaderOnlyJob {

    private final String podName = System.getenv("HOSTNAME");

    private final String url =
            System.getenv().getOrDefault("RAFT_ELECTOR_URL", "http://localhost:4040");

    private final RestTemplate elector;

    private final ObjectMapper json = new ObjectMapper();

    public LeaderOnlyJob() {
        SimpleClientHttpRequestFactory http = new SimpleClientHttpRequestFactory();
        http.setConnectTimeout(1000);
        // Long enough for a blocking query of 60 s.
        http.setReadTimeout(75_000);
        this.elector = new RestTemplate(http);
    }

    /** The JSON answer of {@code path}, also when the status is 503 (no leader known). */
    private Map<?, ?> ask(String path) {
        String body;
        try {
            body = elector.getForObject(url + path, String.class);
        } catch (HttpStatusCodeException e) {
            body = e.getResponseBodyAsString();
        }
        try {
            return json.readValue(body, Map.class);
        } catch (Exception e) {
            throw new RestClientException("not JSON: " + body, e);
        }
    }

    /** True when raft-elector names this pod as leader; false when it names another or cannot be asked. */
    public boolean isLeader() {
        try {
            Object name = ask("/").get("name");
            return podName != null && podName.equals(name);
        } catch (RestClientException e) {
            return false; // no answer means "not me": never assume leadership
        }
    }

    @Scheduled(fixedRate = 30_000)
    public void run() {
        // Ask right before each run: leadership can move between two runs.
        if (!isLeader()) {
            return;
        }
        System.out.println(podName + " leads: running the job");
        // ... the job that must run on one pod only ...
    }

    /** Prints "leader term me|other|none" at once and on every change, until killed. */
    public void watch() throws InterruptedException {
        String name = null;
        Object term = 0;
        while (true) {
            String query = name == null ? "?wait=60s" : "?wait=60s&term=" + term + "&name=" + name;
            Map<?, ?> now;
            try {
                now = ask("/v1/leader" + query);
            } catch (RestClientException e) {
                Thread.sleep(1000); // the sidecar is restarting: ask again shortly
                continue;
            }
            String leader = String.valueOf(now.get("name"));
            if (!leader.equals(name) || !String.valueOf(now.get("term")).equals(String.valueOf(term))) {
                name = leader;
                term = now.get("term");
                String who = leader.isEmpty() ? "none" : leader.equals(podName) ? "me" : "other";
                System.out.println((leader.isEmpty() ? "-" : leader) + " " + term + " " + who);
                System.out.flush();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("--check")) {
            System.exit(new LeaderOnlyJob().isLeader() ? 0 : 1);
        }
        if (args.length == 3 && args[0].equals("--claim")) {
            // Exactly once per slot (SlotClaims): run only if this pod is granted the slot.
            SlotClaims.Answer a = new SlotClaims(new LeaderOnlyJob().url).ask(args[1], args[2]);
            String me = System.getenv("HOSTNAME");
            if (a.granted()) {
                System.out.println(me + " holds " + args[1] + " " + args[2] + " (token " + a.body.get("token") + "): running the job");
                System.exit(0);
            }
            if (a.status == 409) {
                System.out.println(me + ": " + args[1] + " " + args[2] + " is held by " + a.body.get("holder"));
                System.exit(1);
            }
            System.out.println(me + ": " + args[1] + " " + args[2] + ": " + a.status + " " + a.body.get("error"));
            System.exit(a.status == 503 ? 2 : 3);
        }
        if (args.length == 1 && args[0].equals("--watch")) {
            new LeaderOnlyJob().watch();
            return;
        }
        // A Spring context with this component and @Scheduled processing (what
        // @EnableScheduling registers), without a @Configuration class.
        try (AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext()) {
            ctx.register(LeaderOnlyJob.class);
            ctx.registerBeanDefinition("scheduling",
                    new RootBeanDefinition(ScheduledAnnotationBeanPostProcessor.class));
            ctx.refresh();
            Thread.currentThread().join();
        }
    }
}
